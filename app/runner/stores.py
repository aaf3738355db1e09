"""The job stores: where job records, stage records and flags live, beside the queue.

:class:`MemoryJobStore` beside the in-memory queue (tests), :class:`SqliteJobStore` (a file
beside the SQLite queue, shared by every process on the host) and :class:`RedisJobStore`
(beside a Redis queue, shared by every machine). All three keep the ``JobStore`` contract of
``app.runner.jobs``: atomic changes, an index of unfinished jobs, flags set once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from app.runner.jobs import OPEN_STATUSES, Job, JobStore


def thread_connection(local: threading.local, path: str | Path) -> sqlite3.Connection:
    """This thread's connection to the SQLite file at ``path`` (autocommit, waiting up to
    30 s on a lock), made on its first use and kept in ``local``: a connection is not
    shared between threads."""
    conn: sqlite3.Connection | None = getattr(local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        local.conn = conn
    return conn

class MemoryJobStore:
    def __init__(self) -> None:
        self._jobs: dict[str, str] = {}
        self._open: set[str] = set()  # ids of queued and processing jobs
        self._flags: set[tuple[str, str]] = set()
        self._stages: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()  # re-entered: a job update may read its stages

    def count(self, status: str) -> int:
        jobs = self.unfinished() if status in OPEN_STATUSES else self.all()
        return sum(1 for job in jobs if job.status == status)

    def modify(self, job_id: str, change: Callable[[Job], bool]) -> Job | None:
        with self._lock:
            raw = self._jobs.get(job_id)
            if raw is None:
                return None
            job = Job.from_dict(json.loads(raw))
            if change(job):
                self.save(job)
            return job

    def unfinished(self) -> Iterable[Job]:
        with self._lock:
            raws = [self._jobs[i] for i in self._open]
        return [Job.from_dict(json.loads(r)) for r in raws]

    def set_flag(self, job_id: str, flag: str) -> bool:
        with self._lock:
            if (job_id, flag) in self._flags:
                return False
            self._flags.add((job_id, flag))
            return True

    def has_flag(self, job_id: str, flag: str) -> bool:
        return (job_id, flag) in self._flags

    def clear_flag(self, job_id: str, flag: str) -> None:
        with self._lock:
            self._flags.discard((job_id, flag))

    def save_stage(self, job_id: str, stage: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._stages[(job_id, stage)] = json.dumps(record)

    def load_stages(self, job_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {st: json.loads(raw) for (jid, st), raw in self._stages.items()
                    if jid == job_id}

    def modify_stage(self, job_id: str, stage: str,
                     change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        with self._lock:
            raw = self._stages.get((job_id, stage))
            record = json.loads(raw) if raw else {}
            if change(record):
                self._stages[(job_id, stage)] = json.dumps(record)
            return record

    def save(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = json.dumps(job.to_dict())
            if job.status in OPEN_STATUSES:
                self._open.add(job.id)
            else:
                self._open.discard(job.id)

    def load(self, job_id: str) -> Job | None:
        raw = self._jobs.get(job_id)
        return Job.from_dict(json.loads(raw)) if raw else None

    def all(self) -> Iterable[Job]:
        with self._lock:
            raws = list(self._jobs.values())
        return [Job.from_dict(json.loads(r)) for r in raws]

    def remove(self, job_id: str) -> bool:
        with self._lock:
            for key in [k for k in self._stages if k[0] == job_id]:
                del self._stages[key]
            self._open.discard(job_id)
            return self._jobs.pop(job_id, None) is not None


class SqliteJobStore:
    """One table in a SQLite file (WAL), safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created_at REAL,"
                " status TEXT, kind TEXT, owner TEXT, data TEXT NOT NULL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at)")
            conn.execute("CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status)")
            conn.execute("CREATE TABLE IF NOT EXISTS job_flags (job_id TEXT, flag TEXT,"
                         " PRIMARY KEY (job_id, flag))")
            conn.execute("CREATE TABLE IF NOT EXISTS job_stages (job_id TEXT, stage TEXT,"
                         " data TEXT NOT NULL, PRIMARY KEY (job_id, stage))")

    def count(self, status: str) -> int:
        row = self._conn().execute("SELECT COUNT(*) FROM jobs WHERE status = ?",
                                   (status,)).fetchone()
        return int(row[0])

    def modify(self, job_id: str, change: Callable[[Job], bool]) -> Job | None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # takes the write lock before reading
        try:
            row = conn.execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return None
            job = Job.from_dict(json.loads(row[0]))
            if change(job):
                conn.execute("UPDATE jobs SET status = ?, data = ? WHERE id = ?",
                             (job.status, json.dumps(job.to_dict()), job_id))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return job

    def set_flag(self, job_id: str, flag: str) -> bool:
        cur = self._conn().execute("INSERT OR IGNORE INTO job_flags VALUES (?, ?)",
                                   (job_id, flag))
        return cur.rowcount > 0

    def clear_flag(self, job_id: str, flag: str) -> None:
        self._conn().execute("DELETE FROM job_flags WHERE job_id = ? AND flag = ?",
                             (job_id, flag))

    def save_stage(self, job_id: str, stage: str, record: dict[str, Any]) -> None:
        self._conn().execute("INSERT OR REPLACE INTO job_stages VALUES (?, ?, ?)",
                             (job_id, stage, json.dumps(record)))

    def modify_stage(self, job_id: str, stage: str,
                     change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT data FROM job_stages WHERE job_id = ? AND stage = ?",
                               (job_id, stage)).fetchone()
            record = json.loads(row[0]) if row else {}
            if change(record):
                conn.execute("INSERT OR REPLACE INTO job_stages VALUES (?, ?, ?)",
                             (job_id, stage, json.dumps(record)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return record

    def load_stages(self, job_id: str) -> dict[str, dict[str, Any]]:
        rows = self._conn().execute("SELECT stage, data FROM job_stages WHERE job_id = ?",
                                    (job_id,)).fetchall()
        return {stage: json.loads(data) for stage, data in rows}

    def has_flag(self, job_id: str, flag: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM job_flags WHERE job_id = ? AND flag = ?",
                                   (job_id, flag)).fetchone()
        return row is not None

    def _conn(self) -> sqlite3.Connection:
        return thread_connection(self._local, self.path)

    def save(self, job: Job) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO jobs (id, created_at, status, kind, owner, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (job.id, job.created_at, job.status, job.kind, job.owner, json.dumps(job.to_dict())),
        )

    def load(self, job_id: str) -> Job | None:
        row = self._conn().execute("SELECT data FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_dict(json.loads(row[0])) if row else None

    def all(self) -> Iterable[Job]:
        rows = self._conn().execute("SELECT data FROM jobs ORDER BY created_at DESC").fetchall()
        return [Job.from_dict(json.loads(r[0])) for r in rows]

    def unfinished(self) -> Iterable[Job]:
        rows = self._conn().execute(
            "SELECT data FROM jobs WHERE status IN (?, ?)", OPEN_STATUSES).fetchall()
        return [Job.from_dict(json.loads(r[0])) for r in rows]

    def remove(self, job_id: str) -> bool:
        cur = self._conn().execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        self._conn().execute("DELETE FROM job_flags WHERE job_id = ?", (job_id,))
        self._conn().execute("DELETE FROM job_stages WHERE job_id = ?", (job_id,))
        return cur.rowcount > 0


class RedisJobStore:
    """A hash of JSON records in Redis, beside a Redis queue."""

    def __init__(self, url: str, namespace: str = "studio") -> None:
        import redis

        self.r = redis.Redis.from_url(url)
        self.key = f"{namespace}:jobs"
        self.flags = f"{namespace}:job-flags"
        self.open = f"{namespace}:jobs:open"  # a set: ids of queued and processing jobs
        if not self.r.exists(f"{self.open}:built"):
            self._build_open_index()

    def _build_open_index(self) -> None:
        """Once per store (a history from before the index): index its unfinished jobs. Two
        processes doing it at once add the same ids; a stale id is dropped when read."""
        ids = [job.id for job in self.all() if job.status in OPEN_STATUSES]
        if ids:
            self.r.sadd(self.open, *ids)
        self.r.set(f"{self.open}:built", "1")

    def _index(self, pipe: Any, job: Job) -> None:
        if job.status in OPEN_STATUSES:
            pipe.sadd(self.open, job.id)
        else:
            pipe.srem(self.open, job.id)

    def count(self, status: str) -> int:
        jobs = self.unfinished() if status in OPEN_STATUSES else self.all()
        return sum(1 for job in jobs if job.status == status)

    def unfinished(self) -> Iterable[Job]:
        ids = sorted(i.decode() if isinstance(i, bytes) else str(i)
                     for i in self.r.smembers(self.open))
        if not ids:
            return []
        jobs, stale = [], []
        for job_id, raw in zip(ids, self.r.hmget(self.key, ids), strict=True):
            job = Job.from_dict(json.loads(raw)) if raw else None
            if job is None or job.status not in OPEN_STATUSES:
                stale.append(job_id)  # removed, or finished by a writer the index missed
            else:
                jobs.append(job)
        if stale:
            self.r.srem(self.open, *stale)
        return jobs

    def modify(self, job_id: str, change: Callable[[Job], bool]) -> Job | None:
        import redis

        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.watch unannotated
                    raw = pipe.hget(self.key, job_id)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    job = Job.from_dict(json.loads(raw))
                    if not change(job):
                        pipe.unwatch()
                        return job
                    pipe.multi()
                    pipe.hset(self.key, job_id, json.dumps(job.to_dict()))
                    self._index(pipe, job)
                    pipe.execute()
                    return job
                except redis.WatchError:
                    continue

    def set_flag(self, job_id: str, flag: str) -> bool:
        return bool(self.r.sadd(self.flags, f"{job_id}:{flag}"))

    def has_flag(self, job_id: str, flag: str) -> bool:
        return bool(self.r.sismember(self.flags, f"{job_id}:{flag}"))

    def clear_flag(self, job_id: str, flag: str) -> None:
        self.r.srem(self.flags, f"{job_id}:{flag}")

    def save_stage(self, job_id: str, stage: str, record: dict[str, Any]) -> None:
        self.r.hset(f"{self.key}:stages:{job_id}", stage, json.dumps(record))

    def modify_stage(self, job_id: str, stage: str,
                     change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        import redis

        key = f"{self.key}:stages:{job_id}"
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.watch unannotated
                    raw = pipe.hget(key, stage)
                    record = json.loads(raw) if raw else {}
                    if not change(record):
                        pipe.unwatch()
                        return record
                    pipe.multi()
                    pipe.hset(key, stage, json.dumps(record))
                    pipe.execute()
                    return record
                except redis.WatchError:
                    continue

    def load_stages(self, job_id: str) -> dict[str, dict[str, Any]]:
        raw = self.r.hgetall(f"{self.key}:stages:{job_id}")
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v)
                for k, v in raw.items()}

    def save(self, job: Job) -> None:
        with self.r.pipeline() as pipe:  # MULTI: the record and its index entry together
            pipe.hset(self.key, job.id, json.dumps(job.to_dict()))
            self._index(pipe, job)
            pipe.execute()

    def load(self, job_id: str) -> Job | None:
        raw = self.r.hget(self.key, job_id)
        return Job.from_dict(json.loads(raw)) if raw else None

    def all(self) -> Iterable[Job]:
        return [Job.from_dict(json.loads(v)) for v in self.r.hvals(self.key)]

    def remove(self, job_id: str) -> bool:
        self.r.delete(f"{self.key}:stages:{job_id}")
        self.r.srem(self.open, job_id)
        return bool(self.r.hdel(self.key, job_id))


def create_job_store(queue_url: str, data_dir: Path) -> JobStore:
    if queue_url.startswith(("redis://", "rediss://")):
        return RedisJobStore(queue_url)
    if queue_url.startswith("memory://"):
        return MemoryJobStore()
    return SqliteJobStore(data_dir / "jobs.sqlite3")
