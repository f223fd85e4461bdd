"""The task registry and the SS8-to-SS3 mapping."""
import pytest

from dbmtl.tasks import LOCATIONS, MEMBRANE_LABELS, SS3_LABELS, SS8_LABELS, SS8_TO_SS3, TASKS, ss8_to_ss3


def test_task_registry():
    assert set(TASKS) == {"lm", "ss3", "ss8", "loc", "ms"}
    assert {t.kind for t in TASKS.values()} == {"lm", "residue", "protein"}
    assert TASKS["ss3"].labels == SS3_LABELS and TASKS["ss8"].labels == SS8_LABELS
    assert TASKS["loc"].labels == LOCATIONS and len(LOCATIONS) == 10
    assert TASKS["ms"].labels == MEMBRANE_LABELS == ("M", "S")
    assert TASKS["lm"].labels == ()
    assert len({t.control for t in TASKS.values()}) == 5


def test_ss8_to_ss3_mapping():
    assert ss8_to_ss3("HGIEBTSC") == "HHHEECCC"
    assert set(SS8_TO_SS3) == set(SS8_LABELS)
    assert ss8_to_ss3("") == ""
    with pytest.raises(ValueError, match="'L'"):
        ss8_to_ss3("HHL")
