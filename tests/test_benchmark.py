"""Fast inference and `dbmtl benchmark`: batch composition never changes a prediction, the vectorized hot
path says what the per-residue loops said, the fits recover known curves, and a tiny benchmark run fills
every field of its report (MMseqs2 only when installed; no timing thresholds anywhere)."""
import json
import math
import random

import numpy as np
import pytest
import torch

from dbmtl.benchmark.run import forward_flops, forward_worker, predict_flops, run_benchmark, to_markdown
from dbmtl.cli import main
from dbmtl.data.layouts import layout_for
from dbmtl.tokens import Alphabet
from dbmtl.inference.writers import residue_rows
from dbmtl.benchmark.mmseqs import (database_records, find_mmseqs, fit_all, fit_linear, fit_power,
                                   run_mmseqs_baseline, run_timed)
from dbmtl.model.transformer import blocked_attention
from dbmtl.model import PRESETS, ModelConfig
from dbmtl.model.checkpoint import save_checkpoint
from dbmtl.inference.predictor import Predictor, label_string
from dbmtl.tasks import OUTPUT_TASKS
from dbmtl.readers.fasta import read_fasta
from dbmtl.tasks import TASKS

from helpers import tiny_predictor

CONTEXT = 96  # small context: windows (decoder 47 residues, encoder 95) and crops happen at modest lengths


@pytest.fixture(scope="module")
def mixed_sequences(data_dir):
    """Real proteins of mixed lengths: tiny, typical, and longer than one window (several windows)."""
    recs = list(read_fasta(data_dir / "unlabeled/mmseqs2_examples/QUERY.fasta", check_duplicates=False))
    real = [r.sequence for r in recs]
    rng = random.Random(0)
    picked = rng.sample([s for s in real if len(s) < 60], 3) + rng.sample([s for s in real if 60 <= len(s) < 130], 2)
    picked += [s[:230] for s in real[:40] if len(s) >= 400][:1]
    return picked + ["M", "MK", "ACDEFGHIKLMNPQRSTVWYXBZUO"]


def _all_outputs(p: Predictor, seqs):
    return {s: pr for s, pr in zip(seqs, p.predict(seqs))}


# (kind, label_inputs, conv_kernel)
CASES = [("encoder", "placeholder", 0), ("encoder", "placeholder", 5), ("decoder", "placeholder", 0), ("decoder", "teacher", 0)]


@pytest.mark.parametrize("kind,label_inputs,conv", CASES)
def test_any_batch_composition_gives_the_same_predictions(mixed_sequences, kind, label_inputs, conv):
    """Every output (SS3, SS8, location, membrane) of every protein is the same, to float tolerance,
    whether it is predicted alone, with all others, in another order, or under any token budget."""
    base = tiny_predictor(label_inputs, kind=kind, context=CONTEXT, conv_kernel=conv)
    assert any(len(s) > layout_for(kind, Alphabet(), CONTEXT).max_residue_length() for s in mixed_sequences)  # windows are exercised
    p = Predictor(base.model, base.alphabet, batch_tokens=100_000)
    reference = {s: p.predict([s])[0] for s in mixed_sequences}  # alone: a batch of one
    rng = random.Random(1)
    # budget 1: one row per batch (free-running decoding then takes a step per row: slow, left to the others)
    for budget in ((250, 100_000) if label_inputs == "teacher" else (1, 250, 100_000)):
        p.batch_tokens = budget
        order = mixed_sequences[:]
        rng.shuffle(order)
        got = _all_outputs(p, order)
        for s in mixed_sequences:
            for task in OUTPUT_TASKS:
                np.testing.assert_allclose(got[s].probabilities[task], reference[s].probabilities[task], atol=2e-5,
                                           err_msg=f"{kind}/{label_inputs}/conv {conv} budget {budget} task {task} length {len(s)}")
                assert got[s].labels[task] == reference[s].labels[task]
            assert got[s].probabilities["ss3"].shape == (len(s), 3)


@pytest.mark.parametrize("kind,label_inputs,conv", CASES)
def test_blocked_attention_predicts_what_sdpa_predicts(mixed_sequences, kind, label_inputs, conv):
    """The bf16 CPU attention path, run in float32 so that only the algorithm differs, with blocks far
    smaller than a batch: the same probabilities as torch's SDPA under any batch budget."""
    base = tiny_predictor(label_inputs, kind=kind, context=CONTEXT, conv_kernel=conv)
    sdpa = Predictor(base.model, base.alphabet, batch_tokens=100_000, attention="sdpa")
    blocked = Predictor(base.model, base.alphabet, batch_tokens=300, attention="blocked")
    assert all(m.attention == "sdpa" for m in base.model.modules() if hasattr(m, "attention"))  # not touched
    for a, b in zip(sdpa.predict(mixed_sequences), blocked.predict(mixed_sequences)):
        for task in OUTPUT_TASKS:
            np.testing.assert_allclose(a.probabilities[task], b.probabilities[task], atol=2e-5)


@pytest.mark.parametrize("case", ["plain", "causal", "prefix", "arbitrary", "causal+padding"])
def test_blocked_attention_equals_sdpa(case):
    torch.manual_seed(0)
    B, H, T, D = 3, 4, 70, 16
    q, k, v = (torch.randn(B, H, T, D) for _ in range(3))
    lengths = torch.tensor([70, 41, 5])
    prefix = (torch.arange(T)[None, :] < lengths[:, None])[:, None, None, :]
    mask, causal = None, False
    if case == "causal":
        causal = True
    elif case == "prefix":
        mask = prefix
    elif case == "arbitrary":
        mask = (torch.rand(B, 1, T, T) > 0.5) | torch.eye(T, dtype=torch.bool)
    elif case == "causal+padding":  # the decoder's left-padded rows: causal, valid keys, a query sees itself
        eye = torch.eye(T, dtype=torch.bool)
        mask = (torch.ones(T, T, dtype=torch.bool).tril() & prefix.flip(-1)) | eye
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    for block in (1, 500, 1 << 21):  # a row of a block at a time ... everything at once
        got = blocked_attention(q, k, v, mask, causal=causal, block_elements=block)
        torch.testing.assert_close(got, ref, atol=2e-6, rtol=1e-5)


def test_run_timed_reports_the_commands_memory_not_ours():
    import sys

    ballast = bytearray(300 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # make this process large
    small = run_timed([sys.executable, "-S", "-c", "pass"])
    big = run_timed([sys.executable, "-S", "-c", "x = bytearray(200 * 2**20); x[::4096] = b'y' * len(x[::4096])"])
    assert small.returncode == 0 and small.max_rss_mib < 100
    assert 200 < big.max_rss_mib < 300 and big.wall_s > 0
    assert run_timed(["/nonexistent/command"]).returncode != 0
    del ballast


def test_a_protein_beside_duplicates_of_itself_and_different_neighbours(mixed_sequences):
    """The same protein in one batch several times, or next to much longer ones (more padding), gets the
    same numbers as alone."""
    p = tiny_predictor(kind="encoder", context=CONTEXT)
    short = "MKTAYIAKQRQISFVKSHFSRQ"
    alone = p.predict([short])[0]
    crowd = p.predict([short, short, mixed_sequences[-4], short, mixed_sequences[7]])
    for i in (0, 1, 3):
        for task in OUTPUT_TASKS:
            np.testing.assert_allclose(crowd[i].probabilities[task], alone.probabilities[task], atol=2e-5)


@pytest.mark.parametrize("kind,label_inputs,conv", CASES[:3])
def test_bf16_is_batch_invariant_and_close_to_fp32(mixed_sequences, kind, label_inputs, conv):
    base = tiny_predictor(label_inputs, kind=kind, context=CONTEXT, conv_kernel=conv)
    fp32 = Predictor(base.model, base.alphabet, batch_tokens=500)
    bf16 = Predictor(base.model, base.alphabet, batch_tokens=500, dtype="bf16")
    assert next(base.model.parameters()).dtype == torch.float32  # the model passed in is left as it was
    batched = bf16.predict(mixed_sequences)
    exact = fp32.predict(mixed_sequences)
    for s, b, e in zip(mixed_sequences, batched, exact):
        alone = bf16.predict([s])[0]
        for task in OUTPUT_TASKS:
            np.testing.assert_allclose(b.probabilities[task], alone.probabilities[task], atol=1e-2)
            np.testing.assert_allclose(b.probabilities[task], e.probabilities[task], atol=5e-2)


@pytest.mark.parametrize("conv", [0, 5])
def test_int8_predictor_runs_and_stays_close(mixed_sequences, conv):
    base = tiny_predictor(kind="encoder", context=CONTEXT, conv_kernel=conv)
    q = Predictor(base.model, base.alphabet, int8=True)
    out, ref = q.predict(mixed_sequences[:5]), base.predict(mixed_sequences[:5])
    for a, b in zip(out, ref):
        np.testing.assert_allclose(a.probabilities["ss3"], b.probabilities["ss3"], atol=0.1)
        np.testing.assert_allclose(a.probabilities["ss3"].sum(1), 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="int8"):
        Predictor(base.model, base.alphabet, int8=True, dtype="bf16")


def test_label_string_matches_the_per_residue_join():
    rng = np.random.default_rng(0)
    for task in (TASKS["ss3"], TASKS["ss8"]):
        idx = rng.integers(0, len(task.labels), 500)
        assert label_string(task.labels, idx) == "".join(task.labels[i] for i in idx)
    assert label_string(("HH", "E"), np.array([1, 0])) == "EHH"  # multi-letter labels still work


def test_residue_rows_match_per_residue_formatting():
    p = tiny_predictor(kind="encoder").predict({"x1": "MKTAYIAKQRQ"})[0]
    p.probabilities["ss3"][:4] = np.float32([[0.12345, 0.5, 0.37655], [0.00005, 0.99995, 0.0],
                                             [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    tasks = ["ss3", "ss8"]
    expected = []
    for i, aa in enumerate(p.sequence):
        cells = [p.id, str(i + 1), aa] + [p.labels[t][i] for t in tasks]
        cells += [f"{v:.4f}" for t in tasks for v in p.probabilities[t][i]]
        expected.append("\t".join(cells))
    assert residue_rows(p, tasks) == "\n".join(expected) + "\n"


def test_linear_fit_recovers_a_known_line_and_its_extrapolation():
    sizes = [5e3, 1e4, 2e4, 5e4, 1e5, 2e5]
    noise = [1.02, 0.98, 1.01, 0.99, 1.015, 0.985]
    secs = [(3.0 + 500e-6 * n) * e for n, e in zip(sizes, noise)]
    fit = fit_linear(sizes, secs, at=5.3e7)
    assert fit["a_s"] == pytest.approx(3.0, rel=0.1)
    assert fit["b_s_per_million"] == pytest.approx(500, rel=0.05)
    truth = 3.0 + 500e-6 * 5.3e7
    assert fit["ci95_s"][0] <= truth <= fit["ci95_s"][1]
    exact = fit_linear(sizes, [3.0 + 500e-6 * n for n in sizes])
    assert exact["predicted_s"] == pytest.approx(truth, rel=1e-6)


def test_power_fit_recovers_offset_and_exponent():
    sizes = [5e3, 1e4, 2e4, 5e4, 1e5, 2e5]
    fit = fit_power(sizes, [4.0 + 2e-3 * n**0.8 for n in sizes], at=1e7)
    assert fit["c"] == pytest.approx(0.8, abs=0.01)
    assert fit["a_s"] == pytest.approx(4.0, rel=0.05)
    assert fit["predicted_s"] == pytest.approx(4.0 + 2e-3 * 1e7**0.8, rel=0.1)
    assert fit["c_jackknife"][0] <= 0.8 + 0.01 and fit["c_jackknife"][1] >= 0.8 - 0.01


def test_fits_are_made_on_the_sizes_where_they_apply():
    sizes = [5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5]
    secs = [3.0, 4.0, 6.0, 9.0, 12.0, 18.0, 36.0]
    fits = fit_all(sizes, secs, n_real=20_000)
    assert fits["linear_large"]["sizes"] == [5e4, 1e5, 2e5, 5e5]
    assert fits["linear_real"]["sizes"] == [5e3, 1e4, 2e4]
    assert len(fits["linear_all"]["sizes"]) == len(fits["power_all"]["sizes"]) == 7
    assert "linear_large" not in fit_all(sizes[:5], secs[:5], n_real=20_000)  # two large sizes are not a fit


def test_databases_are_real_first_then_shuffled_copies_and_prefixes_of_each_other():
    rng = random.Random(0)
    real = [(f"p{i}", "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(20 + i))) for i in range(7)]
    small = list(database_records(real, 5))
    assert small == real[:5]
    big = list(database_records(real, 23, seed=3))
    assert len(big) == 23 and big[:7] == real
    assert big[:16] == list(database_records(real, 16, seed=3))  # any size is a prefix of a larger one
    for k, (rid, seq) in enumerate(big[7:]):
        src = real[k % 7][1]
        assert rid.endswith(real[k % 7][0]) and sorted(seq) == sorted(src)  # same length and composition
    assert sum(a[1] != b[1] for a, b in zip(big[7:14], real)) >= 6  # actually shuffled
    assert big != list(database_records(real, 23, seed=4))


def test_flop_counts():
    cfg = ModelConfig(**PRESETS["paper"])
    f = forward_flops(cfg, 32, 1024, causal=False)
    n = 12 * cfg.n_embd**2 * cfg.n_layer
    assert f["linear"] == 2 * (n + cfg.vocab_size * cfg.n_embd) * 32 * 1024
    assert f["attention"] == 4 * cfg.n_layer * 32 * 1024**2 * cfg.n_embd
    assert forward_flops(cfg, 32, 1024, causal=True)["attention"] == f["attention"] / 2
    enc = ModelConfig(**{**PRESETS["tiny"], "context": 64}, kind="encoder")
    need = predict_flops(enc, [10, 63, 64])
    # per-residue: 10+1, 63+1, and 64 residues -> windows of 63 (2 rows); per-protein: crop to 63 residues
    per_residue = [11, 64, 64, 64]
    per_protein = [11, 64, 64]
    assert need["tokens"] == 2 * sum(per_residue) + 2 * sum(per_protein)
    assert predict_flops(ModelConfig(**PRESETS["tiny"]), [10]) is None  # decoder rows: not counted


@pytest.mark.parametrize("conv", [0, 9])
def test_linear_flops_count_every_weight_a_token_multiplies(conv):
    """2 FLOPs per multiply-add of every linear and convolution weight in the model's forward pass."""
    from dbmtl.benchmark.run import linear_flops_per_token
    from dbmtl.model import Transformer

    cfg = ModelConfig(**{**PRESETS["mini"], "vocab_size": 56}, kind="encoder", conv_kernel=conv)
    model = Transformer(cfg)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)))
    assert linear_flops_per_token(cfg) == 2 * weights


def test_forward_worker_reports_a_sane_fraction_of_peak():
    r = forward_worker({"config": "tiny", "dtype": "fp32", "device": "cpu", "threads": 1, "batch": 2, "length": 64,
                        "min_time": 0.0, "max_repeats": 1})
    assert r["params"] > 0 and r["seconds"] > 0 and r["peak"]["flops"] > 0
    assert r["flops_per_s"] == pytest.approx(r["flops"]["total"] / r["seconds"])
    assert 0 < r["fraction_of_peak"] < 10 and math.isfinite(r["fraction_of_peak"])
    assert r["max_rss_mib"] > 0


def test_predict_cli_half_precision_and_int8(tmp_path):
    p = tiny_predictor(kind="encoder")
    model = save_checkpoint(tmp_path / "m", p.model, p.alphabet)
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQISFVK\n>b\nMSTNPKPQRK\n")
    rows = {}
    for flags in ([], ["--dtype", "bf16"], ["--dtype", "bf16", "--attention", "sdpa"], ["--int8"]):
        out = tmp_path / ("out" + "".join(flags))
        assert main(["predict", str(fasta), "-o", str(out), "--model", str(model), "--quiet", *flags]) == 0
        rows[tuple(flags)] = [json.loads(line) for line in open(out / "predictions.jsonl")]
    for got in rows.values():
        assert [r["id"] for r in got] == ["a", "b"] and len(got[0]["ss3"]) == 16


def test_benchmark_smoke_fills_the_report(tmp_path, data_dir, monkeypatch):
    """A tiny run on a machine without MMseqs2: every dbmtl field present and sane (no timing thresholds),
    and the report says how to get the baseline."""
    import dbmtl.benchmark.run

    monkeypatch.setattr(dbmtl.benchmark.run, "find_mmseqs", lambda: None)
    p = tiny_predictor(kind="encoder")
    model = save_checkpoint(tmp_path / "m", p.model, p.alphabet)
    out = tmp_path / "bench"
    messages = []
    r = run_benchmark(out, model=str(model), configs=["default"], dtypes=["fp32", "bf16"], data_dir=data_dir,
                      proteins=5, batch=2, length=64, memory_proteins=30, memory_max_length=40,
                      threads=1, device="cpu", profile_proteins=3, plot=False, log=messages.append)
    cfg = r["configs"][0]
    assert [f["dtype"] for f in cfg["forward"]] == ["fp32", "bf16"]
    for fw in cfg["forward"]:
        assert fw["seconds"] > 0 and fw["s_per_row"] == pytest.approx(fw["seconds"] / 2)
        assert fw["peak"]["flops"] > 0 and 0 < fw["fraction_of_peak"] < 10
        assert fw["max_rss_mib"] > 0
    for pr in cfg["predict"]:
        assert pr["proteins"] == 5 and pr["residues"] == r["query"]["residues"]
        assert pr["proteins_per_s"] == pytest.approx(5 / pr["wall_s"]) and pr["max_rss_mib"] > 0
        assert pr["residues_per_s"] == pytest.approx(pr["residues"] / pr["wall_s"])
    agree = cfg["predict"][1]["agreement_with_fp32"]
    assert 0.9 <= agree["ss3"] <= 1.0 and 0 <= agree["max_probability_difference"] < 0.2
    assert cfg["predict_flops"]["tokens"] > r["query"]["residues"]
    assert "mmseqs not found" in r["mmseqs"]["skipped"] and "setup_benchmark.sh" in r["mmseqs"]["skipped"]
    assert any("mmseqs not found" in m for m in messages)
    assert r["memory"]["proteins"] == 30 and r["memory"]["max_rss_mib"] > 0
    assert r["profile"]["ops"] and all(0 <= o["fraction"] <= 1 for o in r["profile"]["ops"])
    assert any("fraction" in t for t in r["targets"])
    saved = json.loads((out / "benchmark.json").read_text())
    assert saved["configs"][0]["predict"][0]["wall_s"] == cfg["predict"][0]["wall_s"]
    md = (out / "benchmark.md").read_text()
    assert md == to_markdown(saved) and "| default (encoder) |" in md and "Not run: mmseqs not found" in md


@pytest.mark.skipif(find_mmseqs() is None, reason="mmseqs not installed (bash scripts/setup_benchmark.sh)")
def test_mmseqs_baseline_on_tiny_databases(tmp_path, data_dir):
    src = data_dir / "unlabeled/mmseqs2_examples"
    query = tmp_path / "q.fasta"
    recs = list(read_fasta(src / "QUERY.fasta", check_duplicates=False))[:10]
    query.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in recs))
    r = run_mmseqs_baseline(query, src / "DB.fasta.gz", [300, 600, 21_000], tmp_path / "w", threads=1,
                            easy_search_size=300, log=lambda m: None)
    assert [e["size"] for e in r["sizes"]] == [300, 600, 21_000]
    assert r["sizes"][-1]["shuffled"] == 1_000 and r["sizes"][0]["real"] == 300
    assert all(e["search_wall_s"] > 0 and e["hits"] >= 0 for e in r["sizes"])
    assert r["easy_search"]["returncode"] == 0 and r["queries"] == 10
    assert set(r["fits"]) == {"linear_all", "power_all"}  # 2 real sizes and 1 larger: too few for the others
    assert "predicted_s" in r["fits"]["linear_all"] and "c" in r["fits"]["power_all"]
    assert not list((tmp_path / "w").glob("db_*"))  # databases cleaned up
