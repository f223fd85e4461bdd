"""Durable writes: an atomic replace leaves the old text or the new, one run at a time per lock (the lock
goes with the process that held it, even when killed), and a failed run's folders removed again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from dbmtl.durable import Busy, exclusive, make_folder, remove_empty, write_atomic

from helpers import cli_env

HOLD = r"""
import sys, time
from dbmtl.durable import exclusive
with exclusive(sys.argv[1], "the test folder"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_write_atomic_replaces_the_whole_text_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "journal.json"
    write_atomic(path, '{"proteins": 1}')
    write_atomic(path, '{"proteins": 2, "done": true}')
    assert path.read_text() == '{"proteins": 2, "done": true}'
    assert os.listdir(tmp_path) == ["journal.json"]


def test_a_second_holder_is_refused_and_the_lock_goes_with_a_killed_holder(tmp_path):
    lock = tmp_path / "out" / "lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], env=cli_env(), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(Busy, match=f"the test folder is in use by another dbmtl run \\(lock {lock}\\)"):
            with exclusive(lock, "the test folder"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up: the lock file stays, the kernel drops the lock
        holder.wait()
    assert lock.exists()
    with exclusive(lock, "the test folder"):
        assert lock.exists()
    assert not lock.exists()  # released: the lock file removed


def test_the_same_process_cannot_take_a_held_lock_twice(tmp_path):
    lock = tmp_path / "lock"
    with exclusive(lock, "out"):
        with pytest.raises(Busy):
            with exclusive(lock, "out"):
                pass
    with exclusive(lock, "out"):  # free again once released
        pass


def test_make_folder_returns_what_it_made_and_remove_empty_takes_back_only_empty_ones(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    made = make_folder(mine / "a" / "b" / "c")
    assert made == [mine / "a" / "b" / "c", mine / "a" / "b", mine / "a"]  # deepest first
    assert make_folder(mine / "a") == []
    (mine / "a" / "b" / "kept.txt").write_text("x")
    remove_empty(made)
    assert not (mine / "a" / "b" / "c").exists() and (mine / "a" / "b" / "kept.txt").exists()
    (mine / "a" / "b" / "kept.txt").unlink()
    remove_empty(made[1:])
    assert not (mine / "a").exists() and mine.is_dir()  # never a folder it did not make
