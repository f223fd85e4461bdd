"""Reliability tables of per-protein answers: accuracy above and below each confidence, and the threshold
under which answers are guesses."""
import numpy as np


def test_the_guess_threshold_is_the_highest_under_which_answers_were_mostly_wrong():
    from dbmtl.evaluation.calibration import accuracy_by_threshold, guess_threshold

    # 10 proteins: confidences 0.31..0.94, right at or above 0.6 except one; below 0.6 one right of four
    conf = np.array([0.31, 0.42, 0.47, 0.58, 0.61, 0.66, 0.72, 0.8, 0.9, 0.94])
    right = np.array([False, True, False, False, True, True, False, True, True, True])
    probs = np.zeros((10, 4))
    probs[:, 0] = conf  # the answer: class 0, the rest spread evenly
    probs[:, 1:] = ((1 - conf) / 3)[:, None]
    true = np.where(right, 0, 1)
    rows = {r["threshold"]: r for r in accuracy_by_threshold(probs, true)}
    assert rows[0.3] == {"threshold": 0.3, "share_above": 1.0, "accuracy_above": 0.6, "accuracy_below": None}
    assert rows[0.6] == {"threshold": 0.6, "share_above": 0.6, "accuracy_above": round(5 / 6, 4), "accuracy_below": 0.25}
    assert rows[0.65]["accuracy_below"] == 0.4 and rows[0.75]["accuracy_below"] == round(3 / 7, 4)
    assert rows[0.85]["accuracy_below"] == 0.5  # not less than half: not a guess band
    chosen = guess_threshold(list(rows.values()))
    assert chosen["guess_below"] == 0.8 and chosen["accuracy_below"] == round(3 / 7, 4)
    assert chosen["accuracy_above"] == 1.0 and chosen["share_below"] == 0.7
    assert guess_threshold(accuracy_by_threshold(probs, np.zeros(10, dtype=int))) is None  # never wrong
