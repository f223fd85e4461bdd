"""Concurrent requests -> one `predict` call: a small asynchronous batching queue.

A request's sequences wait up to `wait_s` for others; the waiting requests are then predicted together,
up to `budget` residues, in one call on a worker thread (the event loop keeps accepting requests), and
the results are split back. Under load the queue fills while a batch runs, so batches grow without
waiting; alone, a request waits only `wait_s`. One worker thread: the model runs one batch at a time.
When a batch of several requests fails, each is predicted alone, so one request's bad sequence fails
only that request.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass
class _Job:
    sequences: Sequence[str]
    future: asyncio.Future

    @property
    def residues(self) -> int:
        return sum(len(s) for s in self.sequences)


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    proteins: int = 0
    largest_batch: int = 0      # requests in the largest batch


class Batcher:
    """`await batcher.submit(sequences)` -> one result per sequence, from `predict(list of sequences)`."""

    def __init__(self, predict: Callable[[list[str]], list], budget: int = 16384, wait_s: float = 0.005):
        self.predict, self.budget, self.wait_s = predict, budget, wait_s
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbmtl-predict")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, sequences: Sequence[str]) -> list:
        if self._queue is None:
            raise RuntimeError("Batcher.start() was not awaited")
        job = _Job(list(sequences), asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _gather(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        """`first` and the jobs that arrive within wait_s while the budget lasts; a job that would
        overflow the budget is returned separately to open the next batch."""
        loop = asyncio.get_running_loop()
        jobs, total = [first], first.residues
        deadline = loop.time() + self.wait_s
        while total < self.budget:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if total + job.residues > self.budget:
                return jobs, job
            jobs.append(job)
            total += job.residues
        return jobs, None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carried: _Job | None = None
        while True:
            first = carried or await self._queue.get()
            jobs, carried = await self._gather(first)
            sequences = [s for job in jobs for s in job.sequences]
            try:
                results = await loop.run_in_executor(self._executor, self.predict, sequences)
            except Exception as exc:  # the loop goes on; the error goes to the request(s) it belongs to
                if len(jobs) == 1:
                    self._answer(jobs[0], error=exc)
                    continue
                for job in jobs:
                    try:
                        alone = await loop.run_in_executor(self._executor, self.predict, list(job.sequences))
                    except Exception as own:
                        self._answer(job, error=own)
                        continue
                    self._count([job], len(job.sequences))
                    self._answer(job, alone)
                continue
            self._count(jobs, len(sequences))
            n = 0
            for job in jobs:
                self._answer(job, results[n : n + len(job.sequences)])
                n += len(job.sequences)

    @staticmethod
    def _answer(job: _Job, result: list | None = None, error: Exception | None = None) -> None:
        if job.future.done():  # a client that went away cancelled its future
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    def _count(self, jobs: list[_Job], proteins: int) -> None:
        s = self.stats
        s.batches += 1
        s.requests += len(jobs)
        s.proteins += proteins
        s.largest_batch = max(s.largest_batch, len(jobs))
