"""The first prediction of the real `dbmtl predict` command, as the benchmark times it."""
import pytest

from dbmtl.benchmark.latency import first_prediction


def test_first_prediction_failure_names_the_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)first prediction failed \(exit 2\).*no-model"):
        first_prediction(("p", "MKTAYIAKQR"), str(tmp_path / "no-model"), 1, "cpu", tmp_path, repeats=1)
