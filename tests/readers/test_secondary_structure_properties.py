"""Properties of the label-file readers over generated input: well-formed NetSurfP CSV reads back exactly;
any bytes given to the NetSurfP, CullPDB or FLIP readers give records or a FastaFormatError naming the
file, never another exception (the DeepLoc reader's: tests/readers/test_localization.py)."""
from __future__ import annotations

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbmtl.readers.fasta import FastaFormatError
from dbmtl.readers.secondary_structure import read_cullpdb_csv, read_flip, read_netsurfp_csv
from dbmtl.tasks import SS3_LABELS, SS8_LABELS, ss8_to_ss3
from dbmtl.tokens import AMINO_ACIDS


BOUNDED = settings(max_examples=150, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


def fragments_to_bytes(pieces: list[str]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, plus byte strings stitched from pieces of the format so that deep branches run."""
    stitched = st.lists(st.sampled_from([p.encode() for p in pieces] + [b"\xff", b"\x00", b"\xef\xbb\xbf"]),
                        max_size=30).map(b"".join)
    return st.one_of(st.binary(max_size=300), stitched, stitched.map(gzip.compress))


def reads_or_names_file(reader, path) -> list | None:
    """The records, or None after a one-line FastaFormatError naming `path`; any other exception fails."""
    try:
        return list(reader(path))
    except FastaFormatError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return None


# -- NetSurfP ------------------------------------------------------------------------------------------------------

NETSURFP_HEADER = "input, dssp3, dssp8, disorder, cb513_mask"


@st.composite
def netsurfp_rows(draw):
    n = draw(st.integers(1, 40))
    seq = draw(st.text(AMINO_ACIDS, min_size=n, max_size=n))
    ss8 = draw(st.text("".join(SS8_LABELS), min_size=n, max_size=n))
    disorder = draw(st.lists(st.sampled_from(["1.0", "0.0"]), min_size=n, max_size=n))
    mask = draw(st.lists(st.sampled_from(["1.0", "0.0"]), min_size=n, max_size=n))
    return seq, ss8, disorder, mask


@BOUNDED
@given(st.lists(netsurfp_rows(), max_size=6), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_netsurfp_round_trip(tmp_path, rows, newline, compress):
    lines = [NETSURFP_HEADER]
    for seq, ss8, disorder, mask in rows:
        lines.append(",".join(" ".join(x) for x in (seq, ss8_to_ss3(ss8), ss8, disorder, mask)))
    data = (newline.join(lines) + newline).encode()
    path = tmp_path / ("round_HHblits.csv.gz" if compress else "round_HHblits.csv")
    path.write_bytes(gzip.compress(data) if compress else data)
    got = list(read_netsurfp_csv(path))
    assert [(r.id, r.sequence, r.ss3, r.ss8) for r in got] == [
        (f"round_{i}", seq, ss8_to_ss3(ss8), ss8) for i, (seq, ss8, _, _) in enumerate(rows, 1)
    ]
    for rec, (_, _, disorder, mask) in zip(got, rows):
        assert rec.resolved.tolist() == [d == m == "1.0" for d, m in zip(disorder, mask)]


NETSURFP_PIECES = [NETSURFP_HEADER, "input,dssp3", ",", "\n", "\r\n", " ", '"', "A C D", "ACD", "J", "H E C",
                   "HEC", "G T", "1.0", "0.0", "nan", "x", "1.0 1.0 1.0"]


@BOUNDED
@given(fragments_to_bytes(NETSURFP_PIECES))
def test_netsurfp_any_bytes(tmp_path, data):
    path = tmp_path / "any_HHblits.csv"
    path.write_bytes(data)
    reads_or_names_file(read_netsurfp_csv, path)


@BOUNDED
@given(fragments_to_bytes(["id,len,input,expected", "\n", ",", "1", "3", "-2", "ACD", "acd", "J", "HHL",
                           "LLL", "Q", '"', " "]))
def test_cullpdb_any_bytes(tmp_path, data):
    path = tmp_path / "any_cullpdb.csv"
    path.write_bytes(data)
    reads_or_names_file(read_cullpdb_csv, path)


# -- FLIP FASTA ----------------------------------------------------------------------------------------------------

FLIP_PIECES = [">a", ">b", " VALIDATION=True", "\n", "ACD", "HHC", "HEC", "111", "010", "J", "2"]


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.tuples(*[fragments_to_bytes(FLIP_PIECES)] * 3))
def test_flip_any_bytes(tmp_path, files):
    for name, data in zip(("sequences", "sampled", "mask"), files):
        (tmp_path / f"{name}.fasta").write_bytes(data)
    got = reads_or_names_file(read_flip, tmp_path)
    assert got is None or all(set(r.ss3) <= set(SS3_LABELS) for r in got)
