"""The onepass kind's training rows: one row per protein with every label it has."""
import numpy as np
import pytest

from dbmtl.data.layouts import layout_for
from dbmtl.data.onepass import PREFIX, one_pass_examples
from dbmtl.readers.records import ProteinRecord, ResidueRecord
from dbmtl.tasks import LOCATIONS, SS3_LABELS, SS8_LABELS
from dbmtl.tokens import Alphabet


class Data:  # TrainingData's two record lists are all one_pass_examples reads
    def __init__(self, residue, protein):
        self.residue, self.protein = residue, protein


def test_a_protein_brings_every_label_it_has_in_one_row():
    layout = layout_for("onepass", Alphabet(), 16)  # 14 residues per row
    both = "MKVLAW"
    residue = [ResidueRecord("a", both, "HHEECC", "HGEBTC", np.array([1, 1, 1, 0, 1, 1], bool)),
               ResidueRecord("flip", "MKKKK", "CCHHC", None, np.ones(5, bool)),
               ResidueRecord("long", "A" * 20, "C" * 20, "C" * 20, np.ones(20, bool))]
    protein = [ProteinRecord("a", both, "Nucleus", "S"),
               ProteinRecord("multi", "MKAA", None, "M", locations=("Cytoplasm", "Nucleus")),
               ProteinRecord("dual", "MKC", None, "S"),
               ProteinRecord("none", "MKD", None, None),
               ProteinRecord("long", "A" * 20, "Plastid", None)]
    rows = {len(ex.inputs) - PREFIX: ex for ex in one_pass_examples(Data(residue, protein), layout)}
    assert sorted(rows) == [3, 4, 5, 6, 14]  # "none" has no label; "long" is cropped to 14 residues
    a = rows[6]
    assert layout.alphabet.decode(a.inputs[:PREFIX]) == ["<LOC>", "<MS>"]
    assert a.ss8.tolist() == [-1, -1] + [SS8_LABELS.index(c) for c in "HGE"] + [-1] + [SS8_LABELS.index(c) for c in "TC"]
    assert a.ss3.tolist() == [-1, -1] + [SS3_LABELS.index(c) for c in "HHE"] + [-1] + [SS3_LABELS.index(c) for c in "CC"]
    assert a.loc[LOCATIONS.index("Nucleus")] == 1 and a.loc.sum() == 1 and a.ms == 1
    flip = rows[5]
    assert (flip.ss8 == -1).all() and (flip.ss3[PREFIX:] >= 0).all() and flip.loc.sum() == 0 and flip.ms == -1
    multi = rows[4]
    assert multi.loc.sum() == pytest.approx(1.0) and multi.loc[LOCATIONS.index("Cytoplasm")] == 0.5 and multi.ms == 0
    dual = rows[3]
    assert dual.loc.sum() == 0 and dual.ms == 1
    long = rows[14]  # per-residue labels dropped (too long), the location kept on the cropped sequence
    assert (long.ss8 == -1).all() and (long.ss3 == -1).all() and long.loc[LOCATIONS.index("Plastid")] == 1
