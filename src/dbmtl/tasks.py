"""The five DBMTL tasks: one control token each, and the labels the model may emit after it.

A task registry in the TAPE spirit: everything else (tokens, examples, heads, metrics) is derived from
this table, so adding a task is one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass

SS3_LABELS = ("H", "E", "C")
SS8_LABELS = ("H", "G", "I", "E", "B", "T", "S", "C")
LOCATIONS = (
    "Cell.membrane",
    "Cytoplasm",
    "Endoplasmic.reticulum",
    "Extracellular",
    "Golgi.apparatus",
    "Lysosome/Vacuole",
    "Mitochondrion",
    "Nucleus",
    "Peroxisome",
    "Plastid",
)
MEMBRANE_LABELS = ("M", "S")

# 8-state DSSP -> 3-state (Rost & Sander 1993): [G, H, I] -> H, [B, E] -> E, everything else -> C.
SS8_TO_SS3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E", "T": "C", "S": "C", "C": "C"}
# the same as an (8, 3) table: whether SS8 state i falls in SS3 class j (the SS3 derivation's matrix)
SS8_IN_SS3 = tuple(tuple(SS8_TO_SS3[s8] == s3 for s3 in SS3_LABELS) for s8 in SS8_LABELS)


@dataclass(frozen=True)
class Task:
    """One prediction task.

    kind: "lm" (next residue), "residue" (one label per residue) or "protein" (one label per protein).
    field: the record attribute holding the labels, which is also the output column name.
    metric: the name of its accuracy in the field's papers (Q3, Q8, Q10, Q2).
    test_sets: the official test sets it is scored on (files: dbmtl.data.catalog).
    """

    name: str
    control: str
    kind: str
    labels: tuple[str, ...] = ()
    field: str = ""
    metric: str = ""
    test_sets: tuple[str, ...] = ()

    def label_token(self, label: str) -> str:
        return f"<{self.name}:{label}>"

    @property
    def label_tokens(self) -> tuple[str, ...]:
        return tuple(self.label_token(label) for label in self.labels)


RESIDUE_TEST_SETS = ("CB513", "TS115", "CASP12")
PROTEIN_TEST_SETS = ("DeepLoc",)

TASKS: dict[str, Task] = {
    "lm": Task("lm", "<UNIREF50>", "lm"),
    "ss3": Task("ss3", "<SSP3>", "residue", SS3_LABELS, "ss3", "Q3", RESIDUE_TEST_SETS),
    "ss8": Task("ss8", "<SSP8>", "residue", SS8_LABELS, "ss8", "Q8", RESIDUE_TEST_SETS),
    "loc": Task("loc", "<LOC>", "protein", LOCATIONS, "location", "Q10", PROTEIN_TEST_SETS),
    "ms": Task("ms", "<MS>", "protein", MEMBRANE_LABELS, "membrane", "Q2", PROTEIN_TEST_SETS),
}
RESIDUE_TASKS = tuple(name for name, task in TASKS.items() if task.kind == "residue")
PROTEIN_TASKS = tuple(name for name, task in TASKS.items() if task.kind == "protein")
OUTPUT_TASKS = RESIDUE_TASKS + PROTEIN_TASKS  # what prediction answers


def ss8_to_ss3(ss8: str) -> str:
    """Map an 8-state string to 3 states; raises KeyError naming the letter if it is not a DSSP state."""
    try:
        return "".join(SS8_TO_SS3[c] for c in ss8)
    except KeyError as exc:
        raise ValueError(f"not an 8-state DSSP letter: {exc.args[0]!r}") from None


# Class names as people write them: the per-protein answers in every output (files, API, page, report,
# plots) and the names of the per-residue states on the page.
DISPLAY_NAMES = {
    "ss3": {"H": "Helix", "E": "Strand", "C": "Coil"},
    "ss8": {"H": "α-helix", "G": "3₁₀-helix", "I": "π-helix", "E": "β-strand", "B": "β-bridge",
            "T": "Turn", "S": "Bend", "C": "Coil"},
    "loc": {"Cell.membrane": "Cell membrane", "Endoplasmic.reticulum": "Endoplasmic reticulum",
            "Golgi.apparatus": "Golgi apparatus"},
    "ms": {"M": "Membrane-bound", "S": "Soluble"},
}


def display_name(task: str, label: str) -> str:
    return DISPLAY_NAMES.get(task, {}).get(label, label.replace(".", " "))


def output_label(task: str, label: str) -> str:
    """A label as the output files, the API and the page write it: per-residue letters as they are
    (DSSP's, what every structure tool writes), per-protein classes as people write them."""
    return display_name(task, label) if TASKS[task].kind == "protein" else label
