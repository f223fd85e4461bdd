"""Fitting a run into wall-clock seconds: a lent accelerator comes for minutes, so the steps, the learning
rate's decay and the validations are sized from measured rates rather than guessed."""
from __future__ import annotations


def allocate_steps(budget_s: float, startup_s: float, step_s: float, valid_s: float, evals: int,
                   safety: float = 0.9) -> tuple[int, int]:
    """(max_steps, eval_every) that fit `budget_s`: startup, then steps, then `evals` validations.
    The step count is a multiple of `evals`, at least `evals`."""
    room = (budget_s - startup_s - evals * valid_s) * safety
    every = max(1, int(room / step_s) // evals)
    return every * evals, every
