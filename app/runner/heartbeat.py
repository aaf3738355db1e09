"""Worker heartbeats: every process that consumes the queue says "alive" every few seconds.

A record per worker process (``host:pid``) lives next to the queue, in the same backing store
as huey's own data: a table in the SQLite queue file, a hash in Redis, a dict in memory. So
the app can report the workers of *other* processes and machines (``huey_consumer`` on a
second host) in ``/metrics`` and the Jobs tab, the way Flower does for Celery.

The beat starts from huey's ``on_startup`` hook, which every consumer worker thread runs when
it starts: the in-process consumer of ``launch.py`` and ``huey_consumer app.worker.huey`` are
covered by the same hook, and a process that only enqueues (``STUDIO_WORKERS=0``) never beats.
A process killed with ``SIGKILL`` simply stops beating; its record goes stale and it no longer
counts as live after :data:`LIVE_AFTER` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from huey.api import Huey

from app.runner.stores import thread_connection

log = logging.getLogger("studio.heartbeat")

INTERVAL = 10.0     # seconds between beats
LIVE_AFTER = 35.0   # a worker whose last beat is older than this is not live
FORGET_AFTER = 3600.0  # stale records are dropped after an hour
REDIS_KEY = "studio:workers"
SQLITE_TABLE = "studio_workers"


@dataclass
class WorkerRecord:
    """What one worker process says about itself."""

    worker: str
    host: str
    pid: int
    threads: int
    started_at: float
    last_seen: float
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def live(self, now: float | None = None) -> bool:
        return ((now or time.time()) - self.last_seen) <= LIVE_AFTER

    @classmethod
    def from_json(cls, raw: str | bytes) -> WorkerRecord:
        data = json.loads(raw)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class HeartbeatStore(Protocol):
    def write(self, record: WorkerRecord) -> None: ...
    def remove(self, worker: str) -> None: ...
    def records(self) -> list[WorkerRecord]: ...


class MemoryHeartbeatStore:
    """For ``memory://`` queues: only this process can consume them anyway."""

    def __init__(self) -> None:
        self._records: dict[str, str] = {}
        self._lock = threading.Lock()

    def write(self, record: WorkerRecord) -> None:
        with self._lock:
            self._records[record.worker] = record.to_json()

    def remove(self, worker: str) -> None:
        with self._lock:
            self._records.pop(worker, None)

    def records(self) -> list[WorkerRecord]:
        with self._lock:
            raws = list(self._records.values())
        return [WorkerRecord.from_json(r) for r in raws]


class SqliteHeartbeatStore:
    """A small table inside the SQLite queue file, so every process on the host sees it."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._local = threading.local()
        self._conn().execute(
            f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} (worker TEXT PRIMARY KEY,"
            " last_seen REAL NOT NULL, data TEXT NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        return thread_connection(self._local, self.filename)

    def write(self, record: WorkerRecord) -> None:
        self._conn().execute(
            f"INSERT OR REPLACE INTO {SQLITE_TABLE} (worker, last_seen, data) VALUES (?, ?, ?)",
            (record.worker, record.last_seen, record.to_json()))

    def remove(self, worker: str) -> None:
        self._conn().execute(f"DELETE FROM {SQLITE_TABLE} WHERE worker = ?", (worker,))

    def records(self) -> list[WorkerRecord]:
        conn = self._conn()
        conn.execute(f"DELETE FROM {SQLITE_TABLE} WHERE last_seen < ?",
                     (time.time() - FORGET_AFTER,))
        rows = conn.execute(f"SELECT data FROM {SQLITE_TABLE}").fetchall()
        return [WorkerRecord.from_json(r[0]) for r in rows]


class RedisHeartbeatStore:
    """A hash in the queue's Redis: workers on any machine report here."""

    def __init__(self, conn: Any, key: str = REDIS_KEY) -> None:
        self.conn = conn
        self.key = key

    def write(self, record: WorkerRecord) -> None:
        self.conn.hset(self.key, record.worker, record.to_json())

    def remove(self, worker: str) -> None:
        self.conn.hdel(self.key, worker)

    def records(self) -> list[WorkerRecord]:
        out = []
        stale = []
        now = time.time()
        for worker, raw in self.conn.hgetall(self.key).items():
            record = WorkerRecord.from_json(raw)
            if now - record.last_seen > FORGET_AFTER:
                stale.append(worker)
            else:
                out.append(record)
        if stale:
            self.conn.hdel(self.key, *stale)
        return out


_STORES: dict[int, tuple[object, HeartbeatStore]] = {}
_STORES_LOCK = threading.Lock()


def store_for(huey: Huey) -> HeartbeatStore:
    """The heartbeat store that sits beside ``huey``'s own storage (one per storage)."""
    storage = huey.storage
    with _STORES_LOCK:
        cached = _STORES.get(id(storage))
        if cached is not None and cached[0] is storage:
            return cached[1]
        filename = getattr(storage, "filename", None)
        conn = getattr(storage, "conn", None)
        store: HeartbeatStore
        if isinstance(filename, str):
            store = SqliteHeartbeatStore(filename)
        elif conn is not None and hasattr(conn, "hset"):
            store = RedisHeartbeatStore(conn, key=f"{REDIS_KEY}:{huey.name}")
        else:
            store = MemoryHeartbeatStore()
        _STORES[id(storage)] = (storage, store)
        return store


def worker_id() -> str:
    """The same ``host:pid`` name the queue writes into each job record it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """One per process: counts this process's consumer threads and beats while any lives."""

    def __init__(self, store: HeartbeatStore, *, version: str = "",
                 interval: float = INTERVAL) -> None:
        self.store = store
        self.version = version
        self.interval = interval
        self.worker = worker_id()
        self.started_at = time.time()
        self._threads: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # what this process is working on now ([{"job_id", "stage"}]), given to install()
        self.running: Callable[[], list[dict[str, Any]]] = list

    # huey hooks: run inside each consumer worker thread
    def worker_started(self) -> None:
        with self._lock:
            self._threads.add(threading.get_ident())
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="studio-heartbeat",
                                                daemon=True)
                self._thread.start()
        self.beat()

    def worker_stopped(self) -> None:
        with self._lock:
            self._threads.discard(threading.get_ident())
            last = not self._threads
        if last:
            self.stop()

    def threads_alive(self) -> int:
        alive = {t.ident for t in threading.enumerate()}
        with self._lock:
            self._threads &= alive
            return len(self._threads)

    def record(self) -> WorkerRecord:
        host, _, pid = self.worker.rpartition(":")
        return WorkerRecord(worker=self.worker, host=host, pid=int(pid),
                            threads=self.threads_alive(), started_at=self.started_at,
                            last_seen=time.time(), version=self.version,
                            extra={"running": self.running()})

    def beat(self) -> None:
        try:
            self.store.write(self.record())
        except Exception as exc:  # a missed beat must not kill a worker
            log.warning("heartbeat not written: %s", exc)

    def beat_if_consuming(self) -> None:
        """Say at once what changed (a stage taken or finished), if this process beats."""
        if self.threads_alive():
            self.beat()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.threads_alive() == 0:
                break  # every consumer thread died without saying so: go stale
            self.beat()

    def stop(self) -> None:
        """Clean stop: say goodbye, so the worker leaves the list at once."""
        self._stop.set()
        try:
            self.store.remove(self.worker)
        except Exception as exc:
            log.warning("heartbeat not removed: %s", exc)


def install(huey: Huey, *, interval: float = INTERVAL,
            running: Callable[[], list[dict[str, Any]]] = list) -> Heartbeat:
    """Hook a :class:`Heartbeat` into ``huey``'s worker start and stop; ``running`` says
    what this process works on (its held leases), for ``/health`` and the Jobs tab."""
    from app.config import VERSION

    heartbeat = Heartbeat(store_for(huey), version=VERSION, interval=interval)
    heartbeat.running = running
    huey.on_startup("studio_heartbeat")(heartbeat.worker_started)
    huey.on_shutdown("studio_heartbeat")(heartbeat.worker_stopped)
    return heartbeat


def live_workers(huey: Huey) -> tuple[list[WorkerRecord], list[WorkerRecord]]:
    """(live, stale) worker records, newest beat first."""
    records = sorted(store_for(huey).records(), key=lambda r: r.last_seen, reverse=True)
    now = time.time()
    return [r for r in records if r.live(now)], [r for r in records if not r.live(now)]
