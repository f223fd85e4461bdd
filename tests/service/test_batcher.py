"""The batching queue: concurrent submissions share one predict call under the residue budget."""
from __future__ import annotations

import asyncio

import pytest

from dbmtl.service.batcher import Batcher


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_predicted_together_and_split_back():
    calls = []

    def predict(seqs):
        calls.append(list(seqs))
        return [s.lower() for s in seqs]

    async def main():
        b = Batcher(predict, budget=1000, wait_s=0.05)
        await b.start()
        answers = await asyncio.gather(*(b.submit([f"A{i}" * 3, f"C{i}"]) for i in range(6)))
        await b.stop()
        return answers, b.stats

    answers, stats = run(main())
    assert answers == [[f"a{i}" * 3, f"c{i}"] for i in range(6)]
    assert len(calls) == 1 and stats.largest_batch == 6 and stats.proteins == 12


def test_budget_splits_batches_and_errors_reach_every_waiting_request():
    calls = []

    def predict(seqs):
        calls.append(sum(len(s) for s in seqs))
        if "X" * 5 in seqs:
            raise RuntimeError("model failed")
        return seqs

    async def main():
        b = Batcher(predict, budget=10, wait_s=0.05)
        await b.start()
        ok = await asyncio.gather(*(b.submit(["AAAA"]) for _ in range(5)))
        with pytest.raises(RuntimeError, match="model failed"):
            await b.submit(["X" * 5])
        alone = await b.submit(["B" * 30])  # larger than the budget: predicted alone
        await b.stop()
        return ok, alone

    ok, alone = run(main())
    assert ok == [["AAAA"]] * 5 and alone == ["B" * 30]
    assert max(calls[:-2]) <= 10 and calls[-1] == 30


def test_a_request_that_fails_the_model_fails_alone_not_its_batch():
    def predict(seqs):
        if "BAD" in seqs:
            raise ValueError("protein 'x': looks like DNA")
        return [s.lower() for s in seqs]

    async def main():
        b = Batcher(predict, budget=1000, wait_s=0.05)
        await b.start()
        answers = await asyncio.gather(b.submit(["AAA"]), b.submit(["BAD"]), b.submit(["CC", "DD"]),
                                       return_exceptions=True)
        await b.stop()
        return answers, b.stats

    (good, bad, other), stats = run(main())
    assert good == ["aaa"] and other == ["cc", "dd"]
    assert isinstance(bad, ValueError) and "DNA" in str(bad)
    assert stats.requests == 2 and stats.proteins == 3
