"""`dbmtl evaluate`: score a model on CB513, TS115 (CASP12 when present) and the DeepLoc test set."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..data.catalog import (TEST_SET_FILES, protein_test_sets, require_test_sets, residue_test_sets,
                            trained_localization_sources)
from ..inference.decoding import label_string
from ..inference.predictor import Predictor
from ..tasks import PROTEIN_TASKS, RESIDUE_TASKS, TASKS
from .audit import copy_previous_labels, majority_labels, teacher_forced_residues
from .compare import weighted_tasks
from .baselines import composition_baseline
from .calibration import labeled_probabilities
from .metrics import expected_calibration_error, per_protein_accuracy, per_residue_accuracy


def evaluate(predictor: Predictor, data_dir: Path, limit: int | None = None, audit: bool = True,
             sets: list[str] | None = None, log=print, baseline: bool = True) -> dict:
    """Scores per set and task; `limit` keeps the first N proteins of each set (for quick checks);
    `baseline`: also score the composition baseline on the per-protein sets (dbmtl.evaluation.baselines).
    A data folder without test sets, or a set file without proteins, is an error: an empty report would
    read as a model that was scored."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, not {limit}")
    data_dir = Path(data_dir)
    require_test_sets(data_dir)
    # the report says which heads were trained, so a comparison needs no model folder (runs/ is not shipped)
    results: dict = {"sets": {}, "residue_mode": predictor.residue_mode,
                     "trained_tasks": sorted(weighted_tasks(predictor.meta.get("train") or {})) or None}
    residue_sets, protein_sets = residue_test_sets(data_dir), protein_test_sets(data_dir)
    unknown = set(sets or ()) - set(residue_sets) - set(protein_sets)
    if unknown:
        raise ValueError(f"unknown or absent test sets {sorted(unknown)}; have {sorted(residue_sets) + sorted(protein_sets)}")
    for name, records in {**residue_sets, **protein_sets}.items():
        if not records and (not sets or name in sets):
            raise ValueError(f"test set {name}: {data_dir / TEST_SET_FILES[name]} holds no proteins")
    for name, records in residue_sets.items():
        if sets and name not in sets:
            continue
        records = records[:limit]
        t0 = time.time()
        seqs = [r.sequence for r in records]
        preds = predictor.predict(seqs, tasks=RESIDUE_TASKS)
        entry: dict = {"n_proteins": len(records)}
        for task_name in RESIDUE_TASKS:
            gold = [getattr(r, TASKS[task_name].field) for r in records]
            if any(g is None for g in gold):
                continue
            masks = [r.resolved for r in records]
            entry[task_name] = per_residue_accuracy([p.labels[task_name] for p in preds], gold, masks)
            # the letters as shipped (SS8 inside its residue's SS3 class) are scored above; each task's own
            # argmax beside them, so the cost of agreeing letters stays visible
            argmax = [label_string(TASKS[task_name].labels, p.probabilities[task_name].argmax(1)) for p in preds]
            entry[task_name]["argmax"] = per_residue_accuracy(argmax, gold, masks)
            if audit:
                teacher = None
                if predictor.residue_mode == "free":  # a teacher-forced model: show what the leak would score
                    tf = teacher_forced_residues(predictor, seqs, gold, TASKS[task_name])
                    teacher = per_residue_accuracy(tf, gold, masks)
                entry[task_name]["audit"] = {
                    "teacher_forced": teacher,
                    "copy_previous_true_label": per_residue_accuracy(copy_previous_labels(gold), gold, masks),
                    "majority_class": per_residue_accuracy(majority_labels(gold, masks), gold, masks),
                }
        entry["seconds"] = round(time.time() - t0, 1)
        results["sets"][name] = entry
        log(f"{name}: {len(records)} proteins in {entry['seconds']} s")
    for name, records in protein_sets.items():
        if sets and name not in sets:
            continue
        records = records[:limit]
        t0 = time.time()
        preds = predictor.predict([r.sequence for r in records], tasks=PROTEIN_TASKS)
        entry = {"n_proteins": len(records)}
        for task_name in PROTEIN_TASKS:
            field = TASKS[task_name].field
            entry[task_name] = per_protein_accuracy([p.labels[task_name] for p in preds],
                                                    [getattr(r, field) for r in records], TASKS[task_name].labels)
            entry[task_name]["ece"] = protein_ece(preds, records, TASKS[task_name])
        if baseline:
            entry["composition_baseline"] = composition_baseline(data_dir, records,
                                                                 trained_localization_sources(predictor.meta))
        entry["seconds"] = round(time.time() - t0, 1)
        results["sets"][name] = entry
        log(f"{name}: {len(records)} proteins in {entry['seconds']} s")
    return results


def protein_ece(preds: list, records: list, task) -> float:
    """Expected calibration error of a per-protein task over the proteins with a known label."""
    probs, true = labeled_probabilities(preds, records, task)
    return expected_calibration_error(probs, true)  # NaN without labeled proteins


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _with_ci(score: dict, key: str) -> str:
    lo, hi = score[f"{key}_ci"]
    return f"{_pct(score[key])} [{_pct(lo)}, {_pct(hi)}]"


def to_markdown(results: dict) -> str:
    lines = []
    residue = {k: v for k, v in results["sets"].items() if any(t in v for t in RESIDUE_TASKS)}
    protein = {k: v for k, v in results["sets"].items() if "loc" in v}
    if residue:
        lines += [f"Per-residue (honest: `{results['residue_mode']}` prediction, no true label read); "
                  "accuracy in %, 95% bootstrap interval over proteins",
                  "", "| set | proteins | " + " | ".join(f"{TASKS[t].metric} {k}" for t in RESIDUE_TASKS
                                                        for k in ("mean", "pooled")) + " |",
                  "|---|---:|" + "---|" * 2 * len(RESIDUE_TASKS)]
        for name, e in residue.items():
            cells = []
            for t in RESIDUE_TASKS:
                cells += [_with_ci(e[t], "mean"), _with_ci(e[t], "pooled")] if t in e else ["-", "-"]
            lines.append(f"| {name} | {e['n_proteins']} | " + " | ".join(cells) + " |")
        if any("argmax" in e.get("ss8", {}) for e in residue.values()):
            lines += ["", "The letters above are the ones every output writes: SS3 the likeliest 3-state class, SS8 "
                      "the likeliest 8-state letter inside it. Each residue's own SS8 argmax, unconstrained:",
                      "", "| set | Q8 mean (argmax) | Q8 pooled (argmax) |", "|---|---|---|"]
            for name, e in residue.items():
                if "argmax" in e.get("ss8", {}):
                    a = e["ss8"]["argmax"]
                    lines.append(f"| {name} | {_with_ci(a, 'mean')} | {_with_ci(a, 'pooled')} |")
        if any("audit" in e.get("ss3", {}) for e in residue.values()):
            lines += ["", "Audit (mean over proteins, %): only the first column is an honest prediction",
                      "", "| set | task | honest | teacher-forced (reads true labels) | copy previous true label | majority class |",
                      "|---|---|---:|---:|---:|---:|"]
            for name, e in residue.items():
                for t in RESIDUE_TASKS:
                    if t in e and "audit" in e[t]:
                        a = e[t]["audit"]
                        tf = _pct(a["teacher_forced"]["mean"]) if a["teacher_forced"] else "n/a (never reads labels)"
                        lines.append(f"| {name} | {t.upper()} | {_pct(e[t]['mean'])} | {tf} | "
                                     f"{_pct(a['copy_previous_true_label']['mean'])} | {_pct(a['majority_class']['mean'])} |")
    if protein:
        lines += ["", "Per-protein; accuracy in %, 95% bootstrap interval; ECE: expected calibration error "
                  "(15 bins of the top probability; 0 = calibrated)", "",
                  "| set | proteins | Q10 | MCC (10 classes) | Q2 (membrane) | proteins with M/S | ECE location | ECE membrane |",
                  "|---|---:|---|---:|---|---:|---:|---:|"]
        for name, e in protein.items():
            lines.append(_protein_row(name, e["loc"], e["ms"]))
            base = e.get("composition_baseline")
            if base and "skipped" in base:
                lines.append(f"| composition baseline (logistic regression, no model) | skipped: {base['skipped']} |")
            elif base:
                trained = f", trained on {base['sources']}" if "sources" in base else ""
                lines.append(_protein_row(f"composition baseline (logistic regression, no model{trained})", base["loc"], base["ms"]))
        for name, e in protein.items():
            loc = e["loc"]
            lines += ["", f"{name} location confusion matrix (rows true, columns predicted)", "",
                      "| true \\ predicted | " + " | ".join(c.split(".")[0][:8] for c in loc["classes"]) + " |",
                      "|---|" + "---:|" * len(loc["classes"])]
            for c, row in zip(loc["classes"], loc["confusion"]):
                lines.append(f"| {c} | " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines) + "\n"


def _protein_row(name: str, loc: dict, ms: dict) -> str:
    q2 = _with_ci(ms, "accuracy") if ms.get("n_proteins") else "-"
    ece = [f"{s['ece']:.3f}" if s.get("ece") is not None else "-" for s in (loc, ms)]
    return (f"| {name} | {loc['n_proteins']} | {_with_ci(loc, 'accuracy')} | {loc['mcc']:.3f} | {q2} | "
            f"{ms.get('n_proteins', 0)} | {ece[0]} | {ece[1]} |")


def write_report(results: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j, m = out_dir / "evaluation.json", out_dir / "evaluation.md"
    j.write_text(json.dumps(results, indent=1))
    m.write_text(to_markdown(results))
    return j, m
