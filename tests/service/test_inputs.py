"""Request bodies -> records, and the request limits, without a server."""
from __future__ import annotations

import json

import pytest

from dbmtl.service.inputs import Limits, RequestProblem, check_limits, parse_request


def test_fasta_keeps_descriptions_and_json_maps_ids():
    recs = parse_request(b">a first one\nmkv*\n>b\nMKL\n", "text/plain")
    assert [(r.id, r.description, r.sequence) for r in recs] == [("a", "a first one", "MKV"), ("b", "b", "MKL")]
    recs = parse_request(json.dumps({"sequences": {"x": "mk v*", "y": "AC"}}).encode(), "application/json")
    assert [(r.id, r.sequence) for r in recs] == [("x", "MKV"), ("y", "AC")]
    recs = parse_request(json.dumps({"sequences": ["MK", "AC"]}).encode(), "application/json; charset=utf-8")
    assert [r.id for r in recs] == ["seq1", "seq2"]


@pytest.mark.parametrize("body, status, fragment", [
    (b"\xff\xfe", 422, "not UTF-8"),
    (b">a\nMK\n>a\nMK\n", 422, "duplicate id"),
    (b"   \n", 422, "no sequences"),
])
def test_bad_bodies(body, status, fragment):
    with pytest.raises(RequestProblem) as err:
        parse_request(body, None)
    assert err.value.status == status and fragment in err.value.message


def test_limits():
    recs = parse_request(b">a\nMKV\n>b\nMKV\n", "text/plain")
    check_limits(recs, Limits(max_sequences=2, max_residues=6))
    for limits, fragment in ((Limits(max_sequences=1), "2 sequences"), (Limits(max_residues=5), "6 residues")):
        with pytest.raises(RequestProblem) as err:
            check_limits(recs, limits)
        assert err.value.status == 413 and fragment in err.value.message
