"""The records every reader yields: a residue record's labels and mask as long as its sequence; the readers
need no torch."""
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from dbmtl.data.catalog import residue_test_sets


def test_readers_import_without_torch():
    code = ("import sys, dbmtl.readers.fasta, dbmtl.readers.secondary_structure, dbmtl.readers.localization, "
            "dbmtl.tasks; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_residue_record_needs_a_label_and_a_mask_entry_per_residue(data_dir):
    record = residue_test_sets(data_dir)["TS115"][0]
    n = len(record.sequence)
    assert len(record.ss3) == len(record.ss8) == len(record.resolved) == n
    assert replace(record, ss8=None).ss8 is None  # a source without SS8
    with pytest.raises(ValueError, match=f"record {record.id!r}: ss3 has {n - 1} labels for {n} residues"):
        replace(record, ss3=record.ss3[:-1])
    with pytest.raises(ValueError, match=f"record {record.id!r}: ss8 has {n + 1} labels"):
        replace(record, ss8=record.ss8 + "C")
    with pytest.raises(ValueError, match=f"mask has {n - 2} entries for {n} residues"):
        replace(record, resolved=np.ones(n - 2, bool))

