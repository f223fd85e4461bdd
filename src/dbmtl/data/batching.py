"""The one token-budget rule every batch follows: rows x longest row <= budget, at least one row.

Prediction packs length-sorted proteins with it, training grows a pool sample around a random protein
with it, and the LM stream fills micro-batches with it; a batch of padded rows costs rows x longest.
"""
from __future__ import annotations

from typing import Callable, Sequence


class TokenBudget:
    """A batch being filled: `fits(n)` says whether one more row of n tokens keeps it within budget."""

    def __init__(self, budget: int):
        self.budget = budget
        self.rows = 0
        self.longest = 0

    def fits(self, length: int) -> bool:
        return self.rows == 0 or max(self.longest, length) * (self.rows + 1) <= self.budget

    def add(self, length: int) -> None:
        self.rows += 1
        self.longest = max(self.longest, length)


def token_budget_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped longest-first so that rows x longest row <= budget (at least one row each)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    filling = TokenBudget(budget)
    for i in order:
        if not filling.fits(lengths[i]):
            batches.append(current)
            current, filling = [], TokenBudget(budget)
        current.append(i)
        filling.add(lengths[i])
    if current:
        batches.append(current)
    return batches


def bucket_shape(rows: int, longest: int, step: int, limit: int) -> tuple[int, int]:
    """The (rows, columns) a batch of `rows` rows of at most `longest` tokens is padded up to, so that a GPU
    sees few distinct shapes (libraries that plan kernels per shape, such as cuDNN, then plan once per
    bucket instead of once per batch): columns up to a multiple of `step`, at most `limit` (but never
    below `longest`); rows up to four steps per octave (1..8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ...), at
    most a quarter more rows. step 0: the shape as it is."""
    if step <= 0:
        return rows, longest
    columns = max(longest, min(limit, -(-longest // step) * step))
    if rows > 8:
        grain = 1 << ((rows - 1).bit_length() - 3)  # a quarter of the power of two below rows
        rows = -(-rows // grain) * grain
    return rows, columns


def bucketed(rows: list, filler: Callable[[int], object], step: int, limit: int) -> list:
    """`rows` (examples with `.inputs`) and as many unscored filler rows as make the collated batch the shape
    bucket_shape gives (one filler at least when only the columns grow: a batch is as wide as its longest
    row). `filler(n)`: a row of n tokens, all of them valid (a row of padding alone would give NaN through
    attention) and none of them scored. step 0: `rows` as they are."""
    if step <= 0:
        return rows
    longest = max(len(r.inputs) for r in rows)
    _, columns = bucket_shape(1, longest, step, limit)
    total, _ = bucket_shape(len(rows) + (longest < columns), longest, step, limit)
    return rows + [filler(columns) for _ in range(total - len(rows))]
