"""The benchmark's report: the targets checked against the measurements, benchmark.md, and the plot of
seconds per protein against database size (dbmtl beside MMseqs2) with the memory curve."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .fits import UNIREF50_SEQUENCES
from .machine import machine_line


def check_targets(r: dict) -> list[dict]:
    """Each target with what was measured for it and whether it was met."""
    targets = []
    default = next((c for c in r["configs"] if c["config"] == "default"), None)
    mm = r.get("mmseqs", {})
    if default and default["predict"]:
        best = min(default["predict"], key=lambda x: x["wall_s"])
        if "easy_search" in mm:
            es = mm["easy_search"]["wall_s"]
            targets.append({"target": f"dbmtl predict (default model, all outputs) on the {best['proteins']} query proteins "
                                      f"faster than mmseqs easy-search against {mm['easy_search']['size']:,}",
                            "dbmtl_s": best["wall_s"], "dbmtl_dtype": best["dtype"], "mmseqs_s": es,
                            "ratio": es / best["wall_s"], "met": best["wall_s"] < es})
        fits = mm.get("fits", {})
        primary = "linear_large" if "linear_large" in fits else ("linear_all" if "linear_all" in fits else None)
        if primary:
            ms = fits[primary]["ms_per_query_at_uniref50"]
            targets.append({"target": "at least 100x faster per protein than the MMseqs2 search extrapolated to UniRef50 "
                                      f"(fit `{primary}`; the other fits in the MMseqs2 section)",
                            "dbmtl_ms_per_protein": best["ms_per_protein"], "mmseqs_ms_per_query": ms,
                            "ratio": ms / best["ms_per_protein"], "met": ms / best["ms_per_protein"] >= 100,
                            "ratios_other_fits": {k: f["ms_per_query_at_uniref50"] / best["ms_per_protein"]
                                                  for k, f in fits.items()}})
    for c in r["configs"]:
        for fw in c["forward"]:
            if "fraction_of_peak" in fw:
                targets.append({"target": f"forward {fw['batch']}x{fw['length']} of `{c['config']}` ({fw['dtype']}) "
                                          f">= 50% of the {fw['dtype']} matmul peak",
                                "fraction": fw["fraction_of_peak"], "met": fw["fraction_of_peak"] >= 0.5})
    lat = r.get("latency", {})
    if "best_s" in lat:
        targets.append({"target": f"first prediction: `dbmtl predict` of one protein in a fresh process, model loading "
                                  f"included, within {lat['target_s']:g} s",
                        "first_prediction_s": lat["best_s"], "repeats": lat["repeats"],
                        "model_loaded_s": lat["model_loaded_best_s"], "met": lat["met"]})
    mem = r.get("memory")
    if mem and mem.get("rss_max_10_25pct_mib") and mem.get("rss_max_75_100pct_mib"):
        growth = mem["rss_max_75_100pct_mib"] - mem["rss_max_10_25pct_mib"]
        targets.append({"target": f"resident memory flat while predicting {mem['proteins']:,} proteins "
                                  "(peak of the last quarter within 5% of the peak at 10-25%)",
                        "growth_mib": growth, "met": growth <= 0.05 * mem["rss_max_10_25pct_mib"]})
    return targets


def _g(x: float, unit: str = "") -> str:
    if x is None:
        return "n/a"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def to_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Command: `{r.get('command') or 'dbmtl benchmark'}`", "",
             f"Machine: {machine_line(m)}. Run: {r['started']}, "
             f"{r['elapsed_s'] / 60:.1f} min.", "",
             f"Query proteins: {r['query']['proteins']} ({r['query']['residues']:,} residues, mean length "
             f"{r['query']['mean_length']:.0f}, longest {r['query']['max_length']}) from `{r['query_fasta']}`.", ""]
    lines += ["### dbmtl", "",
              f"Forward: one pass at batch {r['batch']} x {r['length']} tokens (random residues; best of up to 3). "
              "FLOPs = 2 x weights x tokens + attention (4 x layers x T^2 x d per row, half for causal rows); "
              "peak = the best float32 / bfloat16 matmul in the same process. End to end: `dbmtl predict` "
              "(all outputs: SS3, SS8, location, membrane; files written), wall clock of the whole command "
              "including start-up and model loading.", "",
              f"| config | params | precision | attention | forward s per protein (batch {r['batch']} x {r['length']}) | forward FLOP/s | matmul peak | "
              "fraction of peak | forward peak RSS | predict proteins | proteins/s | residues/s | ms/protein | "
              "predict peak RSS |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in r["configs"]:
        pred = {p["dtype"]: p for p in c["predict"]}
        for fw in c["forward"]:
            p = pred.get(fw["dtype"], {})
            peak = fw.get("peak", {}).get("flops")
            lines.append(
                f"| {c['config']} ({c['kind']}) | {c['params'] / 1e6:.1f}M | {fw['dtype']} | {fw['attention']} | {fw['s_per_row']:.4f} | "
                f"{_g(fw['flops_per_s'], 'FLOP/s')} | {_g(peak, 'FLOP/s') if peak else 'n/a'} | "
                f"{('%.0f%%' % (100 * fw['fraction_of_peak'])) if 'fraction_of_peak' in fw else 'n/a (int8)'} | "
                f"{fw['max_rss_mib']:.0f} MiB | " + (f"{p['proteins']} | {p['proteins_per_s']:.2f} | {p['residues_per_s']:,.0f} | "
                f"{p['ms_per_protein']:.1f} | {p['max_rss_mib']:.0f} MiB |" if p else "not run | | | | |"))
    agree = [(c["config"], p) for c in r["configs"] for p in c["predict"] if "agreement_with_fp32" in p]
    if agree:
        lines += ["", "Agreement of lower-precision predictions with float32 on the same proteins:", "",
                  "| config | precision | SS3 residues | SS8 residues | location | membrane | max probability difference |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for name, p in agree:
            a = p["agreement_with_fp32"]
            lines.append(f"| {name} | {p['dtype']} | {100 * a['ss3']:.2f}% | {100 * a['ss8']:.2f}% | "
                         f"{100 * a['location']:.1f}% | {100 * a['membrane']:.1f}% | {a['max_probability_difference']:.3f} |")
    for c in r["configs"]:
        if c.get("predict_flops"):
            need = c["predict_flops"]
            att = {fw["dtype"]: (fw["attention"], fw.get(f"attention_flops_per_s_{fw['attention']}")) for fw in c["forward"]}
            lines += ["", f"Work that predicting the query proteins needs (`{c['config']}`, no padding): "
                      f"{need['rows']:,} rows, {need['tokens']:,} tokens, {_g(need['linear'], 'FLOP')} in linear layers, "
                      f"{_g(need['attention'], 'FLOP')} in attention. Floor at the rates measured in the same run (linear "
                      "layers at the matmul peak, attention at the measured rate of the implementation in use, one "
                      "2,048-token batch of 2 x 1024): "
                      + ", ".join(f"{dt} {s:.1f} s (attention: {att[dt][0]}, {_g(att[dt][1], 'FLOP/s')})"
                                  for dt, s in c.get("predict_floor_s", {}).items()) + "."]
    if r.get("profile"):
        pr = r["profile"]
        lines += ["", f"Profile of `Predictor.predict` ({pr['dtype']}, first {pr['proteins']} query proteins, "
                  "torch.profiler self CPU time): " + ", ".join(f"`{o['op']}` {100 * o['fraction']:.0f}%" for o in pr["ops"])]
    lines += _s4pred_lines(r.get("s4pred", {}), r["configs"]) + _latency_lines(r.get("latency", {}))
    mm = r.get("mmseqs", {})
    lines += ["", "### MMseqs2 (alignment baseline)", ""]
    if "skipped" in mm:
        lines.append(f"Not run: {mm['skipped']}")
    else:
        lines += [f"MMseqs2 {mm['version']}, {mm['threads']} threads, sensitivity {mm['sensitivity']}, "
                  f"{mm['queries']} queries. Databases: the first N of `{Path(mm['db_source']).name}` "
                  f"({mm['real_sequences']:,} real sequences), beyond that residue-shuffled copies. "
                  "`createdb` is database preparation (once per database); search = `mmseqs search` + `convertalis`.", "",
                  "| database sequences | real | shuffled | residues | createdb s | search s | ms per query | hits | queries with hits | search peak RSS |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for e in mm["sizes"]:
            lines.append(f"| {e['size']:,} | {e['real']:,} | {e['shuffled']:,} | {e['residues']:,} | {e['createdb_wall_s']:.1f} | "
                         f"{e['search_wall_s']:.1f} | {e['ms_per_query']:.1f} | {e['hits']:,} | {e['hit_queries']} | "
                         f"{e['search_max_rss_mib']:.0f} MiB |")
        es = mm["easy_search"]
        lines += ["", f"`mmseqs easy-search` (query file against {es['size']:,} sequences, end to end): "
                  f"{es['wall_s']:.1f} s wall, {es['ms_per_query']:.1f} ms per query, peak RSS {es['max_rss_mib']:.0f} MiB."]
        descriptions = {"linear_large": "linear, databases larger than the real set (primary: constant marginal cost)",
                        "linear_real": "linear, real sequences only", "linear_all": "linear, every size",
                        "power_all": "power law with offset, every size"}
        if mm.get("fits"):
            lines += ["", f"Fits of search seconds t against database sequences N, extrapolated to UniRef50 "
                      f"({UNIREF50_SEQUENCES / 1e6:.0f}M sequences); relative residuals in the order of the sizes.", "",
                      "| fit | sizes | model | residuals | rms error | s per query at UniRef50 | interval |",
                      "|---|---|---|---|---:|---:|---|"]
            for name, f in mm["fits"].items():
                if name.startswith("power"):
                    model = f"t = {f['a_s']:.2f} + {f['b']:.3g} N^{f['c']:.3f}" + (
                        f" (c {f['c_jackknife'][0]:.2f}-{f['c_jackknife'][1]:.2f}, jackknife)" if f.get("c_jackknife") else "")
                    interval = "jackknife"
                else:
                    model = (f"t = {f['a_s']:.2f} (± {f['a_se_s']:.2f}) + {f['b_s_per_million']:.1f} "
                             f"(± {f['b_se_s_per_million']:.1f}) N / 1e6")
                    interval = "95% (coefficients)"
                rng = f.get("ms_per_query_range")
                lines.append(f"| {descriptions.get(name, name)} | {', '.join(_short(n) for n in f['sizes'])} | {model} | "
                             f"{', '.join(f'{100 * x:+.0f}%' for x in f['relative_residuals'])} | "
                             f"{100 * f['rms_relative_error']:.1f}% | {f['ms_per_query_at_uniref50'] / 1000:.2f} | "
                             + (f"{rng[0] / 1000:.2f}-{rng[1] / 1000:.2f} s ({interval})" if rng else "n/a") + " |")
    mem = r.get("memory")
    if mem:
        lines += ["", "### Memory while streaming", "",
                  f"`dbmtl predict` ({mem['dtype']}, model `{mem['model']}`) on {mem['proteins']:,} residue-shuffled copies of "
                  f"real proteins ({mem['residues']:,} residues"
                  + (f", cropped to at most {mem['max_length']} residues" if mem.get("max_length") else "")
                  + f"): {mem['wall_s']:.0f} s, {mem['proteins_per_s']:.0f} proteins/s, {mem['output_mib']:.0f} MiB written; "
                  f"RSS sampled every second: peak {mem['max_rss_mib']:.0f} MiB; highest at 10-25% of the run "
                  f"{_mib(mem.get('rss_max_10_25pct_mib'))}, at 75-100% {_mib(mem.get('rss_max_75_100pct_mib'))}; "
                  f"fitted growth after 10%: {_num(mem.get('slope_mib_per_10k_proteins'))} MiB per 10,000 proteins."]
    if r.get("targets"):
        lines += ["", "### Targets", "", "| target | measured | met |", "|---|---|---|"]
        for t in r["targets"]:
            lines.append(f"| {t['target']} | {_target_measure(t)} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _s4pred_lines(s4: dict, configs: list[dict]) -> list[str]:
    lines = ["", "### Beside an S4PRED-sized single-sequence predictor", ""]
    if "skipped" in s4 or not s4:
        return lines + [f"Not run: {s4.get('skipped', 'not measured')}"]
    lines.append(
        f"An ensemble of {s4['members']} {'bidirectional ' if s4['bidirectional'] else ''}GRUs ({s4['layers']} layers, "
        f"hidden {s4['hidden']}, on a {s4['embed']}-wide residue embedding, a linear 3-state head; "
        f"{s4['params']:,} parameters, S4PRED's shape), random weights, {s4['dtype']}, one protein at a time as S4PRED "
        f"predicts, in a fresh process on {s4['device']} with {s4['threads']} torch threads: the first {s4['proteins']} query "
        f"proteins ({s4['residues']:,} residues) in {s4['seconds']:.1f} s, {s4['s_per_protein']:.2f} s per protein, "
        f"{1000 * s4['s_per_residue']:.2f} ms per residue (building the model not counted; peak RSS "
        f"{s4['max_rss_mib']:.0f} MiB).")
    rows = next((c["predict"] for c in configs if c["config"] == "default"), [])
    if rows:
        lines += ["", "| dbmtl predict (`default`, all outputs) | proteins | ms per residue | speed ratio per residue (dbmtl / ensemble) |",
                  "|---|---:|---:|---:|"]
        for p in rows:
            lines.append(f"| {p['dtype']} | {p['proteins']} | {1000 * p['wall_s'] / p['residues']:.3f} | "
                         f"{s4['speedup_per_residue'][p['dtype']]:.1f}x |")
        lines += ["", "dbmtl's times are whole commands (start-up, model loading, all four outputs, files written), the "
                  "ensemble's its predictions alone (one output); the two ran on different numbers of proteins, so "
                  "they compare per residue."]
    return lines + ["", f"Accuracy is not measured here: S4PRED's published CB513 Q3 is {s4['published_cb513_q3']} "
                    "(single sequence, Moffat & Jones 2021); dbmtl's test-set accuracy is in docs/evaluation "
                    "(`dbmtl evaluate`)."]


def _latency_lines(lat: dict) -> list[str]:
    lines = ["", "### First prediction", ""]
    if "best_s" not in lat:
        return lines + [f"Not run: {lat.get('skipped', 'not measured')}"]
    return lines + [
        f"`{lat['command']}` (one protein, `{lat['protein']}`, {lat['residues']} residues), each run a fresh process "
        "from its start (interpreter, imports, model loading) to its exit with the files written "
        f"({', '.join(lat['written'])}): best of {lat['repeats']} **{lat['best_s']:.2f} s** (runs: "
        f"{', '.join(f'{x:.2f}' for x in lat['wall_s'])} s), peak RSS {lat['max_rss_mib']:.0f} MiB. Until the model "
        f"is loaded (the same command line parsed and its predictor built in a fresh process, best of "
        f"{lat['repeats']}): {lat['model_loaded_best_s']:.2f} s. Target <= {lat['target_s']:g} s: "
        f"{'met' if lat['met'] else 'not met'}."]


def _short(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def _mib(x) -> str:
    return "n/a" if x is None else f"{x:.0f} MiB"


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _target_measure(t: dict) -> str:
    if "mmseqs_s" in t:
        return f"dbmtl {t['dbmtl_s']:.1f} s ({t['dbmtl_dtype']}) vs MMseqs2 {t['mmseqs_s']:.1f} s (MMseqs2 / dbmtl = {t['ratio']:.2f})"
    if "mmseqs_ms_per_query" in t:
        others = ", ".join(f"{k} {v:.0f}x" for k, v in t.get("ratios_other_fits", {}).items())
        return (f"dbmtl {t['dbmtl_ms_per_protein']:.0f} ms vs MMseqs2 {t['mmseqs_ms_per_query'] / 1000:.1f} s per protein "
                f"({t['ratio']:.0f}x; by fit: {others})")
    if "fraction" in t:
        return f"{100 * t['fraction']:.0f}%"
    if "first_prediction_s" in t:
        return f"{t['first_prediction_s']:.2f} s (best of {t['repeats']}; model loaded after {t['model_loaded_s']:.2f} s)"
    if "growth_mib" in t:
        return f"{t['growth_mib']:+.1f} MiB"
    return ""


def plot_results(r: dict, path: Path) -> bool:
    """Seconds per protein against database size (MMseqs2 measured + fits; dbmtl flat), and the memory curve."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    mem = r.get("memory")
    fig, axes = plt.subplots(1, 2 if mem and mem.get("samples") else 1, figsize=(13 if mem else 7, 5), squeeze=False)
    ax = axes[0, 0]
    mm = r.get("mmseqs", {})
    xs = np.logspace(3, math.log10(UNIREF50_SEQUENCES * 1.5), 200)
    if mm.get("sizes"):
        sizes = [e["size"] for e in mm["sizes"]]
        ax.plot(sizes, [e["ms_per_query"] / 1000 for e in mm["sizes"]], "o", color="C3", label="MMseqs2 search, measured")
        q = mm["queries"]
        fits = mm.get("fits", {})
        fl = fits.get("linear_large") or fits.get("linear_all")
        fp = fits.get("power_all")
        if fp:
            ax.plot(xs, (fp["a_s"] + fp["b"] * xs ** fp["c"]) / q, ":", color="C3",
                    label=f"MMseqs2, power-law fit, all sizes (c = {fp['c']:.2f})")
        if fits.get("linear_real"):
            fr = fits["linear_real"]
            ax.plot(xs, (fr["a_s"] + fr["b_s_per_million"] * xs / 1e6) / q, "--", color="C1", lw=0.8,
                    label="MMseqs2, linear fit, real sequences only")
        if fl:
            ax.plot(xs, (fl["a_s"] + fl["b_s_per_million"] * xs / 1e6) / q, "-", color="C3",
                    label=f"MMseqs2, linear fit, N >= {_short(min(fl['sizes']))} (primary)")
            lo, hi = fl["ms_per_query_range"]
            ax.errorbar([UNIREF50_SEQUENCES], [fl["ms_per_query_at_uniref50"] / 1000],
                        yerr=[[max(1e-9, (fl["ms_per_query_at_uniref50"] - lo) / 1000)], [(hi - fl["ms_per_query_at_uniref50"]) / 1000]],
                        fmt="s", color="C3", capsize=4, label="primary fit at UniRef50 (95%)")
        es = mm.get("easy_search")
        if es:
            ax.plot([es["size"]], [es["ms_per_query"] / 1000], "^", color="C1", label="MMseqs2 easy-search, measured")
    colors, styles = ["C0", "C2", "C4", "C8"], {"fp32": "--", "bf16": "-.", "int8": ":", "fp16": (0, (6, 2))}
    for i, c in enumerate(r["configs"]):
        for p in c["predict"]:
            ax.plot(xs, np.full_like(xs, p["ms_per_protein"] / 1000), linestyle=styles.get(p["dtype"], "--"),
                    color=colors[i % len(colors)],
                    label=f"dbmtl {c['config']} {p['dtype']} (predict, {p['proteins']} proteins)")
    ax.axvline(UNIREF50_SEQUENCES, color="gray", lw=0.8)
    ax.annotate("UniRef50", (UNIREF50_SEQUENCES, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                color="gray", ha="right", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence database size (sequences)")
    ax.set_ylabel("seconds per query protein (wall clock)")
    ax.set_title(f"{r['machine']['cpu']}, {r['machine']['threads']} threads")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    if mem and mem.get("samples"):
        s = np.asarray(mem["samples"])
        ax2 = axes[0, 1]
        ax2.plot(s[:, 1], s[:, 2], "-", color="C0")
        ax2.set_xlabel("proteins predicted and written")
        ax2.set_ylabel("resident memory of dbmtl predict (MiB)")
        ax2.set_ylim(0, max(s[:, 2]) * 1.2)
        ax2.set_title(f"dbmtl predict, {mem['proteins']:,} proteins ({mem['dtype']})")
        ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_outputs(r: dict, out: Path, plot: bool = True, log=print) -> None:
    (out / "benchmark.json").write_text(json.dumps(r, indent=1))
    md = to_markdown(r)
    if plot:
        if plot_results(r, out / "benchmark.png"):
            md += "\n![seconds per protein against database size; memory curve](benchmark.png)\n"
        else:
            log("benchmark: matplotlib is not installed (pip install -e .[plots]); no plot written")
    (out / "benchmark.md").write_text(md)
    log(f"benchmark: written {out / 'benchmark.json'}, {out / 'benchmark.md'}")
