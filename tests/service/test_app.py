"""POST /predict through a real HTTP client against a running `dbmtl serve`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dbmtl.cli import main
from dbmtl.readers.fasta import read_fasta
from dbmtl.service.load import fasta_bodies, get_json, peak_rss_mib, post, run_load, running_server
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
    assert 0 < pct["p50"] <= pct["p95"] <= pct["p99"] <= pct["max"] and rss > 0  # what the line above reports
    assert batching["largest_batch"] > 1  # concurrent requests shared a predict call
    # answers under load are the same as alone
    status, answer = predict(url, bodies[1])
    assert_same(answer, bundled.predict(list(read_fasta(EXAMPLES))[1:2]))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
                           lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                           max_leaves=12)
BODIES = st.one_of(
    st.binary(max_size=2000),
    st.tuples(st.sampled_from([b"[", b'{"a":', b'{"sequences":']), st.integers(2_000, 20_000)).map(lambda t: t[0] * t[1]),
    st.text(max_size=2000).map(str.encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["fasta", "sequences"]), JSON_VALUES, min_size=1).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=8), st.text("ACDEFGHIKLMNPQRSTVWYXBZJUO*-acgtu \n1", max_size=60), max_size=4)
    .map(lambda seqs: json.dumps({"sequences": seqs}).encode()),
)
CONTENT_TYPES = st.sampled_from(["application/json", "text/plain", "", "application/json; charset=utf-16",
                                 "multipart/form-data; boundary=x", "JSON", "x" * 20000]) | st.text(
    st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=200)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """(base URL, log file) of a server whose output the test reads."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running_server("--max-sequences", "20", "--max-residues", "6000", "--max-request-bytes", "60000",
                        "--threads", "1", log_path=log) as (_, url):
        yield url, log


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_any_request_body_gets_an_answer_not_a_server_error(logged, body, content_type):
    url, _ = logged
    status, raw = post(url + "/predict", body, content_type)
    assert status in (200, 413, 422), (status, raw[:300])
    if status != 200:
        assert json.loads(raw)["detail"]


@pytest.mark.parametrize("body, content_type, status", [
    (b"[" * 100_000, "application/json", 413),       # over the size limit before it is parsed
    (b"[" * 50_000, "application/json", 422),        # nested too deeply for the JSON reader
    (b'{"sequences": ' * 20_000 + b"1" + b"}" * 20_000, "application/json", 413),
    (b"\xff\xfe>a\nMKV\n", "text/plain", 422),
    (b'{"sequences": {"a": "MKV"}}', "application/json; charset=\xff", 200),
    (b">a\nMKV\n", "x" * 30_000, 200),                # any other type is read as FASTA
])
def test_odd_requests_get_a_4xx_answer(logged, body, content_type, status):
    got, raw = post(logged[0] + "/predict", body, content_type)
    assert got == status, raw[:300]


def test_a_client_that_hangs_up_is_one_log_line(logged):
    import socket
    import time

    url, log = logged
    host, port = url.removeprefix("http://").split(":")
    for _ in range(2):
        with socket.create_connection((host, int(port))) as conn:
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n>a\nMKV")
            time.sleep(0.2)
    assert get_json(url + "/health")["status"] == "ok"  # still serving
    deadline = time.time() + 10
    while time.time() < deadline and log.read_text().count("hung up") < 2:
        time.sleep(0.1)
    text = log.read_text()
    assert [line for line in text.splitlines() if "hung up" in line][0].endswith("hung up before sending the whole request")
    assert text.count("hung up") == 2
    assert "Traceback" not in text and "Exception" not in text
