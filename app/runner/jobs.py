"""Job status records that any process can read: the app, an in-process worker thread, or a
``huey_consumer`` on another machine.

A job is one piece of queued work (an image process, a render, a whole message). Its record
holds what a person or a script polls for: status, progress 0-100, the current step, the
steps done and left, the result or the error, and timestamps. The store sits next to the
queue (``app.runner.stores``): a SQLite file beside the SQLite queue, Redis hashes beside a
Redis queue, a dict beside the in-memory queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from models.errors import Conflict, NotFound

JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
OPEN_STATUSES: tuple[str, ...] = ("queued", "processing")
STATUSES: tuple[str, ...] = ("queued", "processing", "completed", "failed", "cancelled")


@dataclass
class Job:
    id: str
    kind: str
    status: str = "queued"
    progress: float = 0.0
    current_step: str | None = None
    steps_completed: list[str] = field(default_factory=list)
    steps_remaining: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    owner: str | None = None
    task_id: str | None = None
    priority: int = 0
    cancel_requested: bool = False
    attempts: int = 0  # runs, counting those a lost worker's reclaim started again
    run: int = 0  # which run of a staged job its queued stage tasks belong to (retry: +1)
    worker: str | None = None
    lease: str | None = None  # token of the run that holds this (unstaged) job: app.runner.leases
    lease_until: float | None = None  # that run's heartbeat deadline (unix time)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """What the REST API shows for a job (no internal fields)."""
        data = self.to_dict()
        data["job_id"] = data.pop("id")
        for key in ("task_id", "cancel_requested", "worker", "lease", "lease_until", "run"):
            data.pop(key, None)
        data["progress"] = round(self.progress, 1)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class JobStore(Protocol):
    def save(self, job: Job) -> None: ...
    def load(self, job_id: str) -> Job | None: ...
    def all(self) -> Iterable[Job]: ...

    def unfinished(self) -> Iterable[Job]:
        """The queued and processing jobs, read through an index: what the reaper looks at
        on every pass costs the same however many finished jobs the history holds."""
        ...

    def remove(self, job_id: str) -> bool: ...

    def modify(self, job_id: str, change: Callable[[Job], bool]) -> Job | None:
        """Load, change and save in one atomic step; ``change`` returns False to skip saving."""
        ...

    def count(self, status: str) -> int: ...

    def set_flag(self, job_id: str, flag: str) -> bool:
        """Set a flag; True only for the caller that set it first (an atomic claim)."""
        ...

    def has_flag(self, job_id: str, flag: str) -> bool: ...
    def clear_flag(self, job_id: str, flag: str) -> None: ...
    def save_stage(self, job_id: str, stage: str, record: dict[str, Any]) -> None: ...
    def load_stages(self, job_id: str) -> dict[str, dict[str, Any]]: ...

    def modify_stage(self, job_id: str, stage: str,
                     change: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Load a stage record ({} when absent), change and save it in one atomic step;
        ``change`` returns False to leave it as it was. Leases are claimed and checked here.
        ``change`` may run more than once (Redis runs it again after a conflicting write):
        whatever it records outside the record must come from its last run."""
        ...


class Jobs:
    """Operations on job records, over any :class:`JobStore`."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._lock = threading.RLock()

    def create(
        self, kind: str, params: dict[str, Any] | None = None, steps: list[str] | None = None,
        *, owner: str | None = None, priority: int = 0, job_id: str | None = None,
        task_id: str | None = None,
    ) -> Job:
        job = Job(id=job_id or uuid.uuid4().hex, kind=kind, params=params or {},
                  steps_remaining=list(steps or []), owner=owner, priority=priority,
                  task_id=task_id)
        self.store.save(job)
        return job

    def get(self, job_id: str) -> Job:
        job = self.store.load(job_id)
        if job is None:
            raise NotFound(f"No job {job_id!r}.", code="QUEUE_JOB_NOT_FOUND",
                           message_ja=f"ジョブ {job_id!r} が見つかりません。")
        return job

    def update(self, job_id: str, *, reopen: bool = False, holder: str | None = None,
               **changes: Any) -> Job:
        """Change fields atomically (across threads and processes).

        A finished job (completed, failed, cancelled) is left as it is unless ``reopen``:
        a late progress report from a parallel stage must not revive a failed job. With
        ``holder`` (a lease token) the change applies only while that run holds the job's
        lease, so a worker that lost its lease cannot overwrite its successor's record.
        """

        def apply(job: Job) -> bool:
            if job.final and not reopen:
                return False
            if holder is not None and job.lease != holder:
                return False
            for key, value in changes.items():
                if not hasattr(job, key):
                    raise AttributeError(key)
                setattr(job, key, value)
            job.updated_at = time.time()
            if job.final and job.finished_at is None:
                job.finished_at = job.updated_at
            return True

        job = self.store.modify(job_id, apply)
        if job is None:
            self.get(job_id)  # raises NotFound
            raise AssertionError("unreachable")
        return job

    def start(self, job_id: str, worker: str) -> Job:
        job = self.get(job_id)
        return self.update(job_id, status="processing", started_at=job.started_at or time.time(),
                           worker=worker, attempts=job.attempts + 1, error=None,
                           finished_at=None)

    def step_done(self, job_id: str, step: str, *, holder: str | None = None) -> Job:
        job = self.get(job_id)
        remaining = [s for s in job.steps_remaining if s != step]
        done = job.steps_completed + ([step] if step not in job.steps_completed else [])
        return self.update(job_id, holder=holder, steps_completed=done,
                           steps_remaining=remaining)

    def request_cancel(self, job_id: str) -> Job:
        """Flag the job; a queued one is cancelled now, a running one at its next step.

        The flag lives apart from the record, so a worker saving progress cannot erase it.
        """
        job = self.get(job_id)
        if job.final:
            raise Conflict(f"Job {job_id} is already {job.status}.", code="QUEUE_JOB_FINISHED",
                           message_ja=f"ジョブ {job_id} は既に {job.status} です。")
        self.store.set_flag(job_id, "cancel")
        if job.status == "queued":
            return self.update(job_id, status="cancelled", cancel_requested=True,
                               current_step="cancelled")
        return self.update(job_id, cancel_requested=True)

    def cancel_requested(self, job_id: str) -> bool:
        return self.store.has_flag(job_id, "cancel")

    def list(self, *, status: str | None = None, kind: str | None = None,
             owner: str | None = None, limit: int = 100) -> list[Job]:
        jobs = [j for j in self.store.all()
                if (status is None or j.status == status)
                and (kind is None or j.kind == kind)
                and (owner is None or j.owner == owner)]
        jobs.sort(key=lambda j: j.created_at, reverse=True)
        return jobs[:limit]

    def count(self, status: str) -> int:
        return self.store.count(status)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for job in self.store.all():
            counts[job.status] = counts.get(job.status, 0) + 1
        return counts

    def delete(self, job_id: str) -> bool:
        return self.store.remove(job_id)
