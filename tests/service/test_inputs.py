"""Request bodies -> records, and the request limits, without a server; the nucleotide choice over HTTP."""
from __future__ import annotations

import json

import pytest

from dbmtl.service.inputs import Limits, RequestProblem, check_limits, parse_request, query_flag
from dbmtl.service.load import post


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


HBB_CDS = "ATGGTGCATCTGACTCCTGAGGAGAAGTCTGCCGTTACTGCCCTGTGGGGCAAGGTGAACGTGGATGAAGTTGGTGGTGAGGCCCTGGGCAGG"
FASTA = f">HBB beta globin\nMVHLTPEEKSAVTALWGKV\n>cds HBB coding sequence\n{HBB_CDS[:60]}\n{HBB_CDS[60:]}\n"


def problem(body: bytes, content_type: str | None, **kw) -> RequestProblem:
    with pytest.raises(RequestProblem) as err:
        parse_request(body, content_type, **kw)
    return err.value


def test_nucleotides_are_refused_in_every_form_unless_allowed():
    for body, content_type in ((FASTA.encode(), "text/plain"),
                               (json.dumps({"fasta": FASTA}).encode(), "application/json"),
                               (json.dumps({"sequences": {"cds": HBB_CDS}}).encode(), "application/json")):
        refused = problem(body, content_type)
        assert refused.status == 422 and "'cds': looks like a nucleotide sequence (DNA or RNA)" in refused.message
        assert [r.sequence for r in parse_request(body, content_type, allow_nucleotides=True)][-1] == HBB_CDS
    assert "<request> line 3: record 'cds'" in problem(FASTA.encode(), "text/plain").message
    allowed = json.dumps({"sequences": {"cds": HBB_CDS}, "allow_nucleotides": True}).encode()
    assert [r.id for r in parse_request(allowed, "application/json")] == ["cds"]
    wrong = json.dumps({"fasta": FASTA, "allow_nucleotides": "yes"}).encode()
    assert '"allow_nucleotides" must be true or false' in problem(wrong, "application/json").message


def test_query_flag():
    assert [query_flag(v, "f") for v in (None, "", "true", "1", "Yes", "false", "0", "no")] == \
        [False, True, True, True, True, False, False, False]
    with pytest.raises(RequestProblem, match="f='maybe': use true or false"):
        query_flag("maybe", "f")


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json"])
def test_fasta_sent_as_one_line_says_to_keep_the_newlines(content_type):
    """`curl -d @file` drops every line break: '>HBB beta globinMVHL...>cds ...ATGG...'."""
    flat = FASTA.replace("\n", "")
    body = json.dumps({"fasta": flat}).encode() if "json" in content_type else flat.encode()
    refused = problem(body, content_type)
    assert refused.status == 422 and "no line breaks" in refused.message and "--data-binary @file" in refused.message
    assert "empty sequence" in problem(b">x\n", content_type if "json" not in content_type else None).message


def test_http_allow_nucleotides_query(server):
    _, url = server
    status, raw = post(url + "/predict", FASTA.encode(), "text/plain")
    assert status == 422 and "looks like a nucleotide sequence" in json.loads(raw)["detail"]
    status, raw = post(url + "/predict?allow_nucleotides=true", FASTA.encode(), "text/plain")
    assert status == 200 and [p["id"] for p in json.loads(raw)["proteins"]] == ["HBB", "cds"]
    status, raw = post(url + "/predict?allow_nucleotides=perhaps", FASTA.encode(), "text/plain")
    assert status == 422 and "use true or false" in json.loads(raw)["detail"]
