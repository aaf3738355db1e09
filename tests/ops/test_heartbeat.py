"""Worker heartbeats: written beside the queue, visible from another process, gone on a
clean stop, stale (not live) when a worker dies without saying so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.runner import heartbeat
from app.runner.heartbeat import Heartbeat, MemoryHeartbeatStore, WorkerRecord, live_workers
from app.services import build_services
from tests.app.runner.test_queue_distributed import redis_url  # noqa: F401 - the shared fixture
from tests.conftest import LiveServer, free_port
from tests.ops.helpers import samples, value

ROOT = Path(__file__).resolve().parents[2]


class CountingStore(MemoryHeartbeatStore):
    """The in-memory store, telling waiters about each write (tests wait on beats, not on
    the clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self._wrote = threading.Condition()

    def write(self, record: WorkerRecord) -> None:
        super().write(record)
        with self._wrote:
            self.writes += 1
            self._wrote.notify_all()

    def wait_for_writes(self, more: int) -> None:
        with self._wrote:
            target = self.writes + more
            assert self._wrote.wait_for(lambda: self.writes >= target, timeout=60)


def test_beats_while_a_consumer_thread_lives_and_says_goodbye() -> None:
    store = CountingStore()
    beat = Heartbeat(store, version="9.9", interval=0.05)
    started = threading.Event()
    release = threading.Event()

    def worker() -> None:
        beat.worker_started()
        started.set()
        release.wait(5)
        beat.worker_stopped()

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait(5)
    first = store.records()[0].last_seen
    store.wait_for_writes(2)  # two more beats, however slow this machine is
    [record] = store.records()
    assert record.worker == beat.worker and record.threads == 1 and record.version == "9.9"
    assert record.last_seen > first  # the beat thread keeps writing
    release.set()
    thread.join(5)
    assert store.records() == []  # clean stop: the record is removed at once


def test_dead_threads_stop_the_beat_and_the_record_goes_stale(monkeypatch) -> None:
    store = CountingStore()
    beat = Heartbeat(store, interval=0.05)
    thread = threading.Thread(target=beat.worker_started)  # dies without worker_stopped
    thread.start()
    thread.join(5)
    assert beat.threads_alive() == 0
    assert beat._thread is not None
    beat._thread.join(timeout=60)  # the beat stops by itself: nobody beats for a dead worker
    assert not beat._thread.is_alive()
    last = store.records()[0].last_seen
    record = store.records()[0]
    assert record.live(now=last + 1)
    assert not record.live(now=last + heartbeat.LIVE_AFTER + 1)


def test_sqlite_records_are_shared_and_old_ones_forgotten(tmp_path: Path) -> None:
    a = heartbeat.SqliteHeartbeatStore(str(tmp_path / "q.db"))
    b = heartbeat.SqliteHeartbeatStore(str(tmp_path / "q.db"))
    now = time.time()
    a.write(WorkerRecord("h:1", "h", 1, 2, now, now))
    a.write(WorkerRecord("h:2", "h", 2, 2, now, now - heartbeat.LIVE_AFTER - 5))
    a.write(WorkerRecord("h:3", "h", 3, 2, now, now - heartbeat.FORGET_AFTER - 5))
    assert sorted(r.worker for r in b.records()) == ["h:1", "h:2"]
    b.remove("h:1")
    assert [r.worker for r in a.records()] == ["h:2"]


def _metrics(url: str) -> dict:
    return samples(httpx.get(url, timeout=10).text)


def _wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise TimeoutError("condition not met")


@pytest.mark.slow
@pytest.mark.parametrize("queue", ["sqlite", "redis"])
def test_app_reports_a_worker_in_another_process(queue, settings, tmp_path, request) -> None:
    """A huey_consumer process beats into the shared store; the app counts it, the worker
    serves its own job metrics, and after SIGINT (graceful) it leaves the list."""
    url = (request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/2" if queue == "redis"
           else f"sqlite:///{tmp_path}/data/queue.sqlite3")
    if queue == "redis":
        import redis

        redis.Redis.from_url(url).flushdb()
    services = build_services(settings.model_copy(update={"queue_url": url, "workers": 0}))
    metrics_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"STUDIO_DATA_DIR": str(settings.data_dir), "STUDIO_QUEUE_URL": url,
                "STUDIO_WORKERS": "0", "STUDIO_METRICS_PORT": str(metrics_port),
                "STUDIO_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT),
                "STUDIO_LOG_FORMAT": "json"})
    consumer = subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "app.worker.huey", "-k", "thread",
         "-w", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        with LiveServer(services) as server:
            app_metrics = f"{server.url}/metrics"
            def both_threads_up() -> dict | None:
                m = _metrics(app_metrics)
                threads = [v for (name, _), v in m.items() if name == "studio_worker_threads"]
                return m if threads == [2] else None  # each thread beats as it starts

            m = _wait(both_threads_up)
            assert value(m, "studio_workers_live") == 1
            [worker] = [labels[0][1] for (name, labels) in m
                        if name == "studio_worker_threads"]
            assert worker.endswith(f":{consumer.pid}")
            live, _ = live_workers(services.queue.huey)
            assert [r.worker for r in live] == [worker]

            job = httpx.post(f"{server.url}/api/jobs/diagnostics",
                             json={"seconds": 0.3, "slices": 2}).json()["data"]["task_id"]
            _wait(lambda: services.jobs.get(job).final)
            assert services.jobs.get(job).status == "completed"
            worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
            w = _wait(lambda: (lambda m: m if value(
                m, "studio_jobs_finished_total", kind="diagnostics.tone",
                status="completed") == 1 else None)(_metrics(worker_metrics)))
            assert value(w, "studio_stage_duration_seconds_count", stage="render",
                         backend="unknown") == 1
            assert value(w, "studio_workers_live") is None  # state is the app's to report
            assert value(_metrics(app_metrics), "studio_jobs_finished_total",
                         kind="diagnostics.tone", status="completed") is None

            consumer.send_signal(signal.SIGINT)  # huey's graceful stop
            consumer.wait(timeout=30)
            m = _metrics(app_metrics)
            assert value(m, "studio_workers_live") == 0
            assert value(m, "studio_worker_last_heartbeat_timestamp_seconds",
                         worker=worker) is None
    finally:
        if consumer.poll() is None:
            consumer.kill()
        output, _ = consumer.communicate(timeout=30)
        services.close()
    assert "Traceback" not in output, output
