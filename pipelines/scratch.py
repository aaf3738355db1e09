"""Scratch folders of a render that a killed process cannot leave behind.

A render works in a folder of the system temp folder (``studio-message-*``, and
``studio-subs-*`` for its subtitles). A process that
ends normally removes it; one that is SIGKILLed (a lost worker, an OOM kill) cannot. So each
folder carries an ``.owner`` file that its render holds an exclusive ``flock`` on while it
lives, with its pid written after the lock is taken. The lock dies with the process, so a
sweep (:func:`sweep_scratch`, run at a worker's start and on every reaper pass) can tell a
dead render's folder from a live one on this machine, whichever process made it, without
trusting pids or clocks: it removes a folder whose ``.owner`` it can lock and that names
a pid (the owner got as far as writing it, then let go). A folder with no readable owner is
only a render in its first microseconds, or one killed in them: it goes after an hour.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

if sys.platform != "win32":  # Windows has no flock: there renders remove their own only
    import fcntl

PREFIX = "studio-message-"  # a message's render
SUBTITLES_PREFIX = "studio-subs-"  # its subtitle burn-in
PREFIXES = (PREFIX, SUBTITLES_PREFIX)
OWNER = ".owner"
UNCLAIMED_MAX_AGE_S = 3600.0


@contextlib.contextmanager
def scratch_folder(prefix: str = PREFIX, root: Path | None = None) -> Iterator[Path]:
    """A new folder under ``root`` (the system temp folder), held by this process until the
    block ends, then removed."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    owner = (folder / OWNER).open("a+")
    try:
        if sys.platform != "win32":
            fcntl.flock(owner.fileno(), fcntl.LOCK_EX)  # waits out a sweep's brief look
        owner.write(str(os.getpid()))
        owner.flush()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # removed before the lock is let go
        owner.close()


def sweep_scratch(prefixes: tuple[str, ...] = PREFIXES, root: Path | None = None,
                  now: float | None = None) -> list[Path]:
    """Remove the scratch folders whose render is gone; returns what it removed."""
    if sys.platform == "win32":
        return []
    base = Path(root or tempfile.gettempdir())
    removed = []
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(prefixes)]
    except OSError:
        return []
    for folder in candidates:
        if folder.is_symlink() or not folder.is_dir():
            continue
        if _abandoned(folder, time.time() if now is None else now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path, now: float) -> bool:
    try:
        owner = (folder / OWNER).open("r")
    except FileNotFoundError:
        return _older_than(folder, now, UNCLAIMED_MAX_AGE_S)
    except OSError:
        return False  # not ours to look into
    with owner:
        try:
            fcntl.flock(owner.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: its render is alive
        try:
            claimed = bool(owner.read().strip())
        finally:
            fcntl.flock(owner.fileno(), fcntl.LOCK_UN)
    return claimed or _older_than(folder, now, UNCLAIMED_MAX_AGE_S)


def _older_than(folder: Path, now: float, seconds: float) -> bool:
    try:
        return now - folder.stat().st_mtime > seconds
    except OSError:
        return False
