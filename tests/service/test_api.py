"""POST /predict through a real HTTP client against a running `dbmtl serve`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dbmtl.cli import main
from dbmtl.readers.fasta import read_fasta
from dbmtl.service.load import fasta_bodies, get_json, peak_rss_mib, post, run_load
from dbmtl.tasks import OUTPUT_TASKS, TASKS, output_label

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proteins.fasta"


def predict(url: str, body, content_type: str = "text/plain") -> tuple[int, dict]:
    data = json.dumps(body).encode() if not isinstance(body, (str, bytes)) else body
    status, raw = post(url + "/predict", data if isinstance(data, bytes) else data.encode(), content_type)
    return status, json.loads(raw)


def assert_same(answer: dict, expected) -> None:
    """The service's proteins equal Predictor.predict's: labels equal, probabilities to 4 decimals."""
    assert [p["id"] for p in answer["proteins"]] == [p.id for p in expected]
    for got, want in zip(answer["proteins"], expected):
        assert got["sequence"] == want.sequence and got["length"] == len(want.sequence)
        for name in OUTPUT_TASKS:
            task = TASKS[name]
            assert got[task.field] == output_label(name, want.labels[name])  # classes as people write them
            probs = got[f"{name}_probabilities"]
            if task.kind == "protein":
                probs = [probs[output_label(name, label)] for label in task.labels]
            np.testing.assert_allclose(probs, want.probabilities[name], atol=6e-5)


def test_fasta_and_json_forms_match_the_predictor(server, bundled):
    _, url = server
    records = list(read_fasta(EXAMPLES))
    expected = bundled.predict(records)
    status, answer = predict(url, EXAMPLES.read_bytes())
    assert status == 200
    assert_same(answer, expected)
    assert [p["description"] for p in answer["proteins"]] == [r.description for r in records]
    assert answer["tasks"]["loc"]["names"][:3] == ["Cell membrane", "Cytoplasm", "Endoplasmic reticulum"]
    assert answer["tasks"]["ms"]["names"] == ["Membrane-bound", "Soluble"]
    status, as_json = predict(url, {"fasta": EXAMPLES.read_text()}, "application/json")
    assert status == 200 and as_json["proteins"] == answer["proteins"]
    status, by_id = predict(url, {"sequences": {r.id: r.sequence.lower() for r in records}}, "application/json")
    assert status == 200
    assert_same(by_id, expected)
    assert all(p["description"] == "" for p in by_id["proteins"])


def test_bad_fasta_gets_the_cli_message(server, tmp_path, capsys):
    _, url = server
    text = ">ok first\nMKVLA\n>bad second\nMKJLA\n"
    status, answer = predict(url, text)
    assert status == 422
    bad = tmp_path / "bad.fasta"
    bad.write_text(text)
    assert main(["predict", str(bad), "-o", str(tmp_path / "out"), "--quiet"]) != 0
    cli_error = capsys.readouterr().err
    assert "invalid character 'J' at position 3" in answer["detail"]
    assert answer["detail"].replace("<request>", str(bad)) in cli_error
    for body in (">x\n", "MKV\n", ""):
        status, answer = predict(url, body)
        assert status == 422 and answer["detail"]


@pytest.mark.parametrize("body, content_type, fragment", [
    ('{"fasta": 3}', "application/json", "JSON must be"),
    ("{not json", "application/json", "invalid JSON"),
    ('{"sequences": {"a": "MK1"}}', "application/json", "invalid character '1' at position 3"),
    ('{"sequences": {"a": 5}}', "application/json", "must be a string"),
])
def test_malformed_json_is_422(server, body, content_type, fragment):
    status, answer = predict(server[1], body, content_type)
    assert status == 422 and fragment in answer["detail"]


def test_limits_answer_413(server):
    _, url = server
    status, answer = predict(url, ">a\n" + "MKTAYIAKQR" * 350 + "\n>b\n" + "MKTAYIAKQR" * 350 + "\n")  # A * 3500 is DNA-like
    assert status == 413 and "7000 residues" in answer["detail"] and "6000" in answer["detail"]
    status, answer = predict(url, "".join(f">s{i}\nMKV\n" for i in range(21)))
    assert status == 413 and "21 sequences" in answer["detail"]
    status, answer = predict(url, ">a\n" + "A\n" * 40000)
    assert status == 413 and "bytes" in answer["detail"]
    assert get_json(url + "/health")["status"] == "ok"  # still serving


def test_page_docs_and_schema_are_offline(server):
    import urllib.request

    _, url = server
    for path in ("/", "/static/page.js", "/assets/viewer.js", "/assets/viewer.css", "/docs"):
        with urllib.request.urlopen(url + path) as answer:
            text = answer.read().decode()
        assert answer.status == 200
        assert "cdn" not in text.lower() and "https://" not in text and "http://" not in text, path
    schema = get_json(url + "/openapi.json")
    assert {"text/plain", "application/json"} <= set(schema["paths"]["/predict"]["post"]["requestBody"]["content"])


def test_bounded_load(server, bundled):
    """300 requests from 20 clients (loops capped in count and time, 127.0.0.1 only): no 5xx, answers
    batched together, latency percentiles and the server's peak memory reported."""
    proc, url = server
    bodies = fasta_bodies(list(read_fasta(EXAMPLES))[:2], per_request=1)  # 76 and 110 residues: a short CI run
    result = run_load(url + "/predict", bodies, requests=300, clients=20, max_seconds=240)
    batching = get_json(url + "/health")["batching"]
    rss = peak_rss_mib(proc.pid)
    pct = result.percentiles()
    print(f"\nload: {result.requests} requests, 20 clients, {result.seconds:.1f} s; latency ms p50 {pct['p50']:.0f} "
          f"p95 {pct['p95']:.0f} p99 {pct['p99']:.0f} max {pct['max']:.0f}; peak RSS {rss} MiB; "
          f"{batching['batches']} batches, largest {batching['largest_batch']} requests")
    assert result.server_errors == 0, result.statuses
    assert result.statuses == {200: 300}
    assert batching["largest_batch"] > 1  # concurrent requests shared a predict call
    # answers under load are the same as alone
    status, answer = predict(url, bodies[1])
    assert_same(answer, bundled.predict(list(read_fasta(EXAMPLES))[1:2]))
