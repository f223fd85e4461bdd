"""Readers: files in the field's formats -> typed, validated records."""
from .fasta import FastaFormatError, SequenceRecord, SkipReport, UnreadableInputError, read_fasta
from .records import ProteinRecord, ResidueRecord

__all__ = [
    "FastaFormatError",
    "SequenceRecord",
    "SkipReport",
    "UnreadableInputError",
    "read_fasta",
    "ProteinRecord",
    "ResidueRecord",
]
