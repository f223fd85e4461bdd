"""Writes that survive a kill or a power cut: fsync a file or folder, replace a small file atomically;
one run at a time per output (a lock the kernel drops when the process dies); output folders a failed run
made removed again. Prediction and embedding runs and training checkpoints rely on them."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def fsync(path: str | Path) -> None:
    """Flush a file's or a folder's entries to disk (a folder: so a rename in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, text: str) -> None:
    """Replace a file's text so that a kill leaves either the old text or the new, never a torn file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync(path.parent)


class Busy(ValueError):
    """Another run holds the lock of the same output."""


@contextmanager
def exclusive(lock: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive flock on the file `lock` (created, and removed again on release) while a run
    writes `what`; a second run is refused at once with Busy. The kernel drops the lock when the process
    ends, even on kill -9, so a stale lock file never blocks anyone."""
    lock = Path(lock)
    while True:
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder went away in between: a run that just finished removed it
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"{what} is in use by another dbmtl run (lock {lock}); wait for it to finish, "
                       "or write to another place") from None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:  # not a file its last holder removed while we waited to lock it
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)  # before unlocking: whoever opened this file sees it is gone and opens a new one
        except FileNotFoundError:
            pass
        os.close(fd)


def make_folder(path: str | Path) -> list[Path]:
    """`mkdir -p path`; the folders it created, deepest first (for remove_empty after a failed run)."""
    path = Path(path)
    made, folder = [], path
    while not folder.exists() and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    path.mkdir(parents=True, exist_ok=True)
    return made


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders make_folder created, deepest first, as long as they are empty: a failed run
    leaves no empty folder behind, and never removes one that holds anything."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
