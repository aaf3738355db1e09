"""What the reaper reads and what it cleans.

* Each job store keeps an index of its unfinished jobs (``JobStore.unfinished``): it holds
  exactly the queued and processing jobs through saves, atomic changes and removals, and a
  Redis history from before the index is indexed once when a store opens it. The reaper's
  pass reads that, not the history (its cost is measured in ``bench/reaper.py``).
* A render's scratch folder (``studio-message-*``) that a SIGKILLed process left behind is
  removed by the next worker start (``recover``) and by the reaper's pass; a live render's
  folder, in this process or another, is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runner.jobs import Job, JobStore
from app.runner.stores import MemoryJobStore, RedisJobStore, SqliteJobStore
from pipelines.scratch import PREFIX, scratch_folder, sweep_scratch
from tests.app.runner.test_queue_distributed import redis_url  # noqa: F401  (the module's fixture)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "memory":
        yield MemoryJobStore()
    elif request.param == "sqlite":
        yield SqliteJobStore(tmp_path / "jobs.sqlite3")
    else:
        import redis

        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        yield RedisJobStore(url)


def _ids(jobs) -> set[str]:
    return {job.id for job in jobs}


def test_unfinished_index_follows_every_write(store: JobStore) -> None:
    for i, status in enumerate(["queued", "processing", "completed", "failed", "cancelled"]):
        store.save(Job(id=f"j{i}", kind="k", status=status))
    assert _ids(store.unfinished()) == {"j0", "j1"}
    assert store.count("queued") == 1 and store.count("processing") == 1
    assert store.count("completed") == 1

    def finish(job: Job) -> bool:
        job.status = "completed"
        return True

    def reopen(job: Job) -> bool:
        job.status = "queued"
        return True

    store.modify("j0", finish)
    store.modify("j2", reopen)  # a retry reopens a finished job
    store.modify("j1", lambda job: False)  # a change that declines leaves it as it was
    assert _ids(store.unfinished()) == {"j1", "j2"}
    assert store.remove("j1")
    assert _ids(store.unfinished()) == {"j2"}
    assert {j.status for j in store.unfinished()} == {"queued"}


def test_redis_history_from_before_the_index(redis_url: str) -> None:  # noqa: F811
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    old = RedisJobStore(redis_url)
    for i, status in enumerate(["queued", "completed", "processing"]):
        old.save(Job(id=f"h{i}", kind="k", status=status))
    client.delete(old.open, f"{old.open}:built")  # as a store written before the index
    assert _ids(RedisJobStore(redis_url).unfinished()) == {"h0", "h2"}
    # an entry the index missed (a writer of the old code finished the job) is dropped
    client.hset(old.key, "h0", json.dumps(Job(id="h0", kind="k", status="completed").to_dict()))
    assert _ids(old.unfinished()) == {"h2"}
    assert not client.sismember(old.open, "h0")


# ----------------------------------------------------------------- scratch folders

HOLDER = """
import sys, time
from pathlib import Path
from pipelines.scratch import scratch_folder
with scratch_folder(root=Path(sys.argv[1])) as folder:
    (folder / "talk.mp4").write_bytes(b"half a render")
    print(folder, flush=True)
    time.sleep(600)
"""


def _holder(root: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_sweep_removes_only_dead_renders(tmp_path: Path) -> None:
    live, live_folder = _holder(tmp_path)
    dead, dead_folder = _holder(tmp_path)
    try:
        _kill(dead)
        with scratch_folder(root=tmp_path) as mine:
            assert sweep_scratch(root=tmp_path) == [dead_folder]
            assert mine.is_dir() and live_folder.is_dir() and not dead_folder.exists()
        assert not mine.exists()  # a render that ends removes its own
    finally:
        _kill(live)
    assert sweep_scratch(root=tmp_path) == [live_folder]
    assert list(tmp_path.iterdir()) == []


def test_unclaimed_folder_waits_an_hour(tmp_path: Path) -> None:
    young = Path(tempfile.mkdtemp(prefix=PREFIX, dir=tmp_path))  # a render's first moment
    assert sweep_scratch(root=tmp_path) == []
    assert sweep_scratch(root=tmp_path, now=time.time() + 7200) == [young]
    other = tmp_path / "someone-else"
    other.mkdir()
    assert sweep_scratch(root=tmp_path, now=time.time() + 7200) == []  # not ours
    assert other.is_dir()


def test_worker_start_and_reaper_pass_sweep(services, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the system temp folder here
    first, first_folder = _holder(scratch)
    _kill(first)
    services.queue.recover()  # what a worker (and launch.py) does at start
    assert not first_folder.exists()

    second, second_folder = _holder(scratch)
    _kill(second)
    services.queue.start_consumer(1, install_signals=False)  # its reaper thread runs passes
    deadline = time.monotonic() + 120
    while second_folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not second_folder.exists()
