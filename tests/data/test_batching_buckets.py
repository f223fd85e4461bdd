"""Shape buckets: a GPU that plans kernels per batch shape sees a few shapes, not one per batch."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dbmtl.data.batching import bucket_shape, bucketed


@given(st.integers(1, 5000), st.integers(1, 1024), st.sampled_from([1, 8, 64, 100]))
def test_a_bucket_holds_the_batch_with_at_most_a_quarter_more_rows_and_one_step_more_columns(rows, longest, step):
    r, c = bucket_shape(rows, longest, step, 1024)
    assert rows <= r <= max(8, rows * 1.25) and (rows > 8 or r == rows)
    assert longest <= c < longest + step
    assert c % step == 0 or c == 1024


def test_few_distinct_shapes_over_every_batch_of_a_token_budget():
    shapes = {bucket_shape(max(1, 65536 // n), n, 64, 1024) for n in range(1, 1025)}
    assert len(shapes) < 80  # 1,024 distinct (rows, columns) before bucketing


def test_step_zero_keeps_the_shape_and_the_limit_caps_columns():
    assert bucket_shape(37, 501, 0, 1024) == (37, 501)
    assert bucket_shape(9, 1000, 64, 1000) == (10, 1000)  # 1024 would pass the context
    assert [bucket_shape(n, 10, 64, 1024)[0] for n in (8, 9, 11, 16, 17, 33, 100)] == [8, 10, 12, 16, 20, 40, 112]


class Row:
    def __init__(self, n: int, filler: bool = False):
        self.inputs, self.filler = [0] * n, filler


@given(st.lists(st.integers(1, 1024), min_size=1, max_size=300))
def test_filler_rows_make_the_bucket_shape_after_the_real_rows(lengths):
    rows = [Row(n) for n in lengths]
    out = bucketed(rows, lambda n: Row(n, filler=True), 64, 1024)
    assert out[: len(rows)] == rows and all(r.filler for r in out[len(rows):])
    _, columns = bucket_shape(1, max(lengths), 64, 1024)
    assert max(len(r.inputs) for r in out) == columns  # collated, the batch is this wide
    wide = max(lengths) < columns  # then one filler at least, of the bucket's width
    assert len(out) == bucket_shape(len(rows) + wide, max(lengths), 64, 1024)[0]
    assert bucketed(rows, lambda n: Row(n, filler=True), 0, 1024) is rows
