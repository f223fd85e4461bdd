"""Where the shared data sets live, and how they are assembled into train / valid / test.

Every training set passes the leakage guard built from all evaluation sets, so no training or
language-model record is identical to a protein we score on.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..readers.leakage import LeakageGuard, sequence_key
from ..readers.localization import (read_deeploc2_tsv, read_deeploc_fasta, read_labeled_fasta_csv,
                                     read_sentences_labels)
from ..readers.records import ProteinRecord, ResidueRecord
from ..readers.secondary_structure import read_cullpdb_csv, read_flip, read_netsurfp_csv, read_pisces2018_csv
from ..tasks import PROTEIN_TEST_SETS, RESIDUE_TEST_SETS

log = logging.getLogger("dbmtl")

REPO_ROOT = Path(__file__).resolve().parents[3]

SS_DIR = "secondary_structure"
LOC_DIR = "localization"
# The test sets named in dbmtl.tasks: per-residue ones in NetSurfP-2.0 CSV format, per-protein ones in
# DeepLoc FASTA format. A set whose file is absent is skipped.
TEST_SET_FILES = {
    "CB513": f"{SS_DIR}/netsurfp2/CB513_HHblits.csv",
    "TS115": f"{SS_DIR}/netsurfp2/TS115_HHblits.csv",
    "CASP12": f"{SS_DIR}/netsurfp2/CASP12_HHblits.csv",
    "DeepLoc": f"{LOC_DIR}/light_attention/deeploc_test_set.fasta",
}
NETSURFP_TRAIN = f"{SS_DIR}/netsurfp2/Train_HHblits.csv"
DEEPLOC_FULL = f"{LOC_DIR}/deeploc_data.fasta"
CORPUS_FILES = ("unlabeled/mmseqs2_examples/DB.fasta.gz", "unlabeled/mmseqs2_examples/QUERY.fasta")
# What load_training_data reads unconditionally (the NetSurfP training CSV and full DeepLoc are optional).
TRAINING_FILES = (
    f"{SS_DIR}/flip/sequences.fasta", f"{SS_DIR}/flip/sampled.fasta", f"{SS_DIR}/flip/mask.fasta",
    f"{SS_DIR}/cullpdb6133_filtered/cb6133filtered.npy.csv",
    f"{LOC_DIR}/light_attention/deeploc_our_val_set.fasta",
    f"{LOC_DIR}/deeploc_train_subset/deeploc_train_sub5k_fixed.fasta", f"{LOC_DIR}/deeploc_train_subset/deeploc_train.csv",
    *(f"{LOC_DIR}/seraveea_random_split/{part}/{name}" for part in ("val", "test") for name in ("sentences.txt", "labels.txt")),
)
UNIREF_SAMPLES = "unlabeled/uniref_samples"  # every *.fasta in it, with lm_sources "mmseqs2+uniref"
LA_TRAIN_RECONSTRUCTED = f"{LOC_DIR}/light_attention_train_reconstructed/deeploc_our_train_set.reconstructed.fasta"
DEEPLOC2_SINGLE = f"{LOC_DIR}/deeploc2_swissprot/deeploc2_single_label_filtered.fasta"
DEEPLOC2_ALL = f"{LOC_DIR}/deeploc2_swissprot/deeploc2_filtered.tsv"
# Localization training data, chosen by the training config's `localization_sources`:
#   "subsets"            the DeepLoc 1.0 training subsets the first models were trained on (the default,
#                        so older configs keep their data)
#   "deeploc1"           the paper's setting: the DeepLoc 1.0 training partition (Light Attention's training
#                        split, reconstructed) plus the subsets, all DeepLoc 1.0 training data
#   "deeploc1+deeploc2"  plus the DeepLoc 2.0 Swiss-Prot proteins DeepLoc 1.0 lacks, several locations too
LOCALIZATION_SOURCES = ("subsets", "deeploc1", "deeploc1+deeploc2")
LM_SOURCES = ("mmseqs2", "mmseqs2+uniref")
# Secondary-structure training data, chosen by the training config's `ss_sources`: "flip+cullpdb" (the
# default) or "flip+cullpdb+pisces2018", which adds the PISCES 2018 chains neither has, all for training
# (the validation proteins stay the same); their terminal coil runs are left unscored (read_pisces2018_csv)
SS_SOURCES = ("flip+cullpdb", "flip+cullpdb+pisces2018")
PISCES2018 = f"{SS_DIR}/pisces2018/pisces2018_train.csv"


def trained_localization_sources(meta: dict) -> str:
    """The localization data a model folder was trained on (its training config's `localization_sources`;
    "subsets" for models from before the choice existed)."""
    return (meta.get("train") or {}).get("localization_sources", "subsets")


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """--data-dir, else $DBMTL_DATA, else ../shared/data next to the repository (or the cwd)."""
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get("DBMTL_DATA"):
        candidates = [Path(os.environ["DBMTL_DATA"])]
    else:
        candidates = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise FileNotFoundError(
        f"data directory not found (tried {', '.join(map(str, candidates))}); "
        "pass --data-dir or set DBMTL_DATA"
    )


def in_holdout(sequence: str, percent: int) -> bool:
    """Deterministic hold-out by sequence digest: the same protein always lands on the same side."""
    return int.from_bytes(sequence_key(sequence)[:4], "little") % 100 < percent


def residue_test_sets(data_dir: Path) -> dict[str, list[ResidueRecord]]:
    return {
        name: list(read_netsurfp_csv(data_dir / TEST_SET_FILES[name], split="test"))
        for name in RESIDUE_TEST_SETS
        if (data_dir / TEST_SET_FILES[name]).exists()
    }


def protein_test_sets(data_dir: Path) -> dict[str, list[ProteinRecord]]:
    return {
        name: list(read_deeploc_fasta(data_dir / TEST_SET_FILES[name], split="test"))
        for name in PROTEIN_TEST_SETS
        if (data_dir / TEST_SET_FILES[name]).exists()
    }


def require_test_sets(data_dir: Path) -> None:
    """Evaluation, and the leakage guard of training, need at least one test set in the data folder."""
    if not any((data_dir / rel).exists() for rel in TEST_SET_FILES.values()):
        raise FileNotFoundError(f"no test sets in the data folder {data_dir}: looked for "
                                f"{', '.join(TEST_SET_FILES.values())}; pass --data-dir or set DBMTL_DATA")


def evaluation_guard(data_dir: Path) -> LeakageGuard:
    guard = LeakageGuard()
    for records in residue_test_sets(data_dir).values():
        guard.add(r.sequence for r in records)
    for records in protein_test_sets(data_dir).values():
        guard.add(r.sequence for r in records)
    return guard


@dataclass
class TrainingData:
    """Everything the trainer samples from; LM sequences are streamed from `corpus_paths`."""

    residue: list[ResidueRecord] = field(default_factory=list)
    protein: list[ProteinRecord] = field(default_factory=list)
    corpus_paths: list[Path] = field(default_factory=list)
    guard: LeakageGuard = field(default_factory=LeakageGuard)
    settings: dict = field(default_factory=dict)  # the source settings it was built with (empty: unknown)

    def split(self, name: str) -> "TrainingData":
        return TrainingData(
            [r for r in self.residue if r.split == name],
            [r for r in self.protein if r.split == name],
            self.corpus_paths,
            self.guard,
            self.settings,
        )


def secondary_structure_training(data_dir: Path, guard: LeakageGuard, valid_percent: int = 5,
                                 sources: str = "flip+cullpdb") -> list[ResidueRecord]:
    """FLIP (3-state, with its own validation flag) merged with CullPDB (8-state) on identical sequence.

    A protein in both keeps FLIP's SS3, mask and split and gains CullPDB's SS8. CullPDB-only proteins are
    held out for validation by sequence digest (`valid_percent`). With `sources` "...+pisces2018", the
    PISCES 2018 chains whose sequence neither has join the training split.
    """
    if sources not in SS_SOURCES:
        raise ValueError(f"ss_sources must be one of {SS_SOURCES}, not {sources!r}")
    by_seq: dict[str, ResidueRecord] = {}
    for rec in read_flip(data_dir / SS_DIR / "flip"):
        by_seq.setdefault(rec.sequence, rec)
    netsurfp_train = data_dir / NETSURFP_TRAIN
    if netsurfp_train.exists():  # the full NetSurfP-2.0 training CSV (3- and 8-state), when a user has it
        for rec in read_netsurfp_csv(netsurfp_train, split="train"):
            known = by_seq.get(rec.sequence)
            if known is None:
                rec.split = "valid" if in_holdout(rec.sequence, valid_percent) else "train"
                by_seq[rec.sequence] = rec
            elif known.ss8 is None:
                known.ss8 = rec.ss8
    merged = 0
    for rec in read_cullpdb_csv(data_dir / SS_DIR / "cullpdb6133_filtered" / "cb6133filtered.npy.csv"):
        if rec.sequence in by_seq:
            if by_seq[rec.sequence].ss8 is None:
                by_seq[rec.sequence].ss8 = rec.ss8
                merged += 1
            continue
        rec.split = "valid" if in_holdout(rec.sequence, valid_percent) else "train"
        by_seq[rec.sequence] = rec
    if sources.endswith("+pisces2018"):
        path = data_dir / PISCES2018
        if not path.exists():
            raise FileNotFoundError(f"ss_sources {sources!r}: the data folder {data_dir} lacks {PISCES2018}")
        for rec in read_pisces2018_csv(path):
            by_seq.setdefault(rec.sequence, rec)
    log.info("secondary structure: %d proteins (%d FLIP+CullPDB merged)", len(by_seq), merged)
    return list(guard.filter(by_seq.values(), "secondary structure"))


def localization_training(data_dir: Path, guard: LeakageGuard, valid_percent: int = 10,
                          sources: str = "subsets") -> list[ProteinRecord]:
    """Union of the full DeepLoc file's training partition (when present), the reconstructed LA training
    split (with `sources` "deeploc1..."), the LA validation file (location + membrane), the DeepLoc training subset and the random
    re-split (location only), then the DeepLoc 2.0 proteins (with "deeploc1+deeploc2"), deduplicated on
    sequence in that order of preference, minus every test protein. `valid_percent` of it is held out (by
    sequence digest) for model selection.
    """
    if sources not in LOCALIZATION_SOURCES:
        raise ValueError(f"localization_sources must be one of {LOCALIZATION_SOURCES}, not {sources!r}")
    loc = data_dir / LOC_DIR
    readers = []
    if (data_dir / DEEPLOC_FULL).exists():  # all of DeepLoc 1.0, when a user has it: its training partition
        readers.append(r for r in read_deeploc_fasta(data_dir / DEEPLOC_FULL) if r.split == "train")
    if sources != "subsets":
        readers.append(read_deeploc_fasta(data_dir / LA_TRAIN_RECONSTRUCTED, split="train"))
    readers += [
        read_deeploc_fasta(loc / "light_attention" / "deeploc_our_val_set.fasta", split="train"),
        read_labeled_fasta_csv(
            loc / "deeploc_train_subset" / "deeploc_train_sub5k_fixed.fasta",
            loc / "deeploc_train_subset" / "deeploc_train.csv",
        ),
        read_sentences_labels(loc / "seraveea_random_split" / "val", "seraveea_val"),
        read_sentences_labels(loc / "seraveea_random_split" / "test", "seraveea_test"),
    ]
    if sources == "deeploc1+deeploc2":  # the FASTA's single-location proteins are also in the TSV
        readers += [read_deeploc_fasta(data_dir / DEEPLOC2_SINGLE, split="train"), read_deeploc2_tsv(data_dir / DEEPLOC2_ALL)]
    by_seq: dict[str, ProteinRecord] = {}
    for source in readers:
        for rec in source:
            by_seq.setdefault(rec.sequence, rec)
    records = list(guard.filter(by_seq.values(), "localization"))
    for rec in records:
        rec.split = "valid" if in_holdout(rec.sequence, valid_percent) else "train"
    if sources != "subsets":
        log.info("localization (%s): %d proteins (%s), %d with several locations, %d with M/S, %d held out",
                 sources, len(records), ", ".join(f"{k} {v}" for k, v in sorted(Counter(r.source for r in records).items())),
                 sum(r.locations is not None for r in records), sum(r.membrane is not None for r in records),
                 sum(r.split == "valid" for r in records))
    return records


def corpus_files(data_dir: Path, lm_sources: str = "mmseqs2") -> list[Path]:
    """The LM corpus FASTA files present in the data folder: the MMseqs2 examples, plus the UniRef samples."""
    if lm_sources not in LM_SOURCES:
        raise ValueError(f"lm_sources must be one of {LM_SOURCES}, not {lm_sources!r}")
    paths = [data_dir / p for p in CORPUS_FILES if (data_dir / p).exists()]
    if lm_sources == "mmseqs2+uniref":
        paths += sorted((data_dir / UNIREF_SAMPLES).glob("*.fasta"))
    return paths


def load_training_data(data_dir: Path, localization_sources: str = "subsets", lm_sources: str = "mmseqs2",
                       ss_sources: str = "flip+cullpdb") -> TrainingData:
    """All training sources of the data folder; a missing source or test set (the leakage guard would
    filter nothing) is an error naming what is missing, not a smaller or leaking training set."""
    data_dir = Path(data_dir)
    missing = [rel for rel in TRAINING_FILES if not (data_dir / rel).exists()]
    if missing:
        raise FileNotFoundError(f"the data folder {data_dir} lacks the training files {', '.join(missing)}; "
                                "pass --data-dir or set DBMTL_DATA")
    require_test_sets(data_dir)
    guard = evaluation_guard(data_dir)
    return TrainingData(
        residue=secondary_structure_training(data_dir, guard, sources=ss_sources),
        protein=localization_training(data_dir, guard, sources=localization_sources),
        corpus_paths=corpus_files(data_dir, lm_sources),
        guard=guard,
        settings={"localization_sources": localization_sources, "lm_sources": lm_sources, "ss_sources": ss_sources},
    )

