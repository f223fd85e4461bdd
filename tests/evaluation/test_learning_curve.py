"""`dbmtl learning-curve`: the log-linear trend of two budgets of one recipe, solved for each target."""
import json

from dbmtl.cli import main


def test_learning_curve_solves_the_log_linear_trend_for_each_target(tmp_path, capsys):
    """Two budgets of one recipe: the fit goes through both points and is solved for the targets."""
    import math

    from dbmtl.evaluation.learning_curve import model_compute

    def run(name, steps, q3, q10):
        model = tmp_path / name
        model.mkdir()
        (model / "config.json").write_text(json.dumps({"step": steps, "train": {
            "tasks": {"lm": 0.25, "ss3": 1, "ss8": 0, "loc": 1, "ms": 0}, "mixing": "joint", "grad_accum": 1,
            "batch_tokens": 4096}}))
        ci = lambda v: {"mean": v, "accuracy": v, "n_proteins": 10}  # noqa: E731
        report = {"model": str(model), "sets": {"CB513": {"ss3": ci(q3)}, "DeepLoc": {"loc": ci(q10), "ms": {"n_proteins": 0}}}}
        (tmp_path / f"{name}.json").write_text(json.dumps(report))
        return f"{name}={tmp_path / f'{name}.json'}"

    small, big = run("small", 100, 0.60, 0.40), run("big", 300, 0.66, 0.75)
    assert model_compute(tmp_path / "big") == (900, 4096)  # 3 tasks per joint step
    assert main(["learning-curve", big, small, "--seconds-per-micro-batch", "0.72", "-o", str(tmp_path / "lc.md")]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ")}
    assert rows["small"][1:3] == ["300", "0.1"] and rows["big"][1:3] == ["900", "0.2"]  # sorted by compute
    need = 300 * math.exp((0.72 - 0.60) / ((0.66 - 0.60) / math.log(3)))  # = 300 * 9 = 2700
    assert rows["CB513 Q3 >= 72"][2].startswith(f"{need:,.0f} (3.0x")
    assert rows["DeepLoc Q10 >= 70"][2] == "reached"
    assert rows["CB513 Q8 >= 58"][1] == "needs two budgets"
