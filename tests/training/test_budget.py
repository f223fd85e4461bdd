"""dbmtl.training.budget: steps, decay and validations sized to a wall-clock budget."""
from dbmtl.training.budget import allocate_steps


def test_steps_fill_the_budget_after_startup_and_validations():
    assert allocate_steps(budget_s=100, startup_s=10, step_s=0.1, valid_s=2, evals=5, safety=1.0) == (800, 160)
    assert allocate_steps(budget_s=100, startup_s=10, step_s=0.1, valid_s=2, evals=6, safety=1.0) == (780, 130)
    assert allocate_steps(budget_s=1, startup_s=10, step_s=1, valid_s=1, evals=4) == (4, 1)  # never zero
