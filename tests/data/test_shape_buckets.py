"""Shape buckets: a GPU that plans kernels per batch shape sees a few shapes, not one per batch."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dbmtl.data.batching import bucket_shape


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
