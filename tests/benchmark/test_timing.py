"""Timed commands report their own memory, not the memory of the process that runs them."""
import sys

from dbmtl.benchmark.timing import run_timed


def test_run_timed_reports_the_commands_memory_not_ours():
    ballast = bytearray(300 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # make this process large
    small = run_timed([sys.executable, "-S", "-c", "pass"])
    big = run_timed([sys.executable, "-S", "-c", "x = bytearray(200 * 2**20); x[::4096] = b'y' * len(x[::4096])"])
    assert small.returncode == 0 and small.max_rss_mib < 100
    assert 200 < big.max_rss_mib < 300 and big.wall_s > 0
    assert run_timed(["/nonexistent/command"]).returncode != 0
    del ballast
