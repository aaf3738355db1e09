"""Any job, whichever door asks: looking one up for its caller, its full view (stages and
artifact URLs), the list, cancel and retry, and the diagnostics job that proves a worker is
alive. ``/api/jobs/*`` and the Jobs tab both go through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.runner.jobs import Job, Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage
from models.errors import NotFound
from pipelines.jobs import job_kinds

DIAGNOSTICS_KIND = "diagnostics.tone"


def queue_kinds() -> list[str]:
    """The kinds of job the queue runs."""
    return list(job_kinds().names())


def visible_job(jobs: Jobs, job_id: str, owns: Callable[[str | None], bool]) -> Job:
    """The job, if ``owns`` its owner; someone else's job reads as not found."""
    job = jobs.get(job_id)
    if not owns(job.owner):
        raise NotFound(f"No job {job_id!r}.", code="QUEUE_JOB_NOT_FOUND",
                       message_ja=f"ジョブ {job_id!r} が見つかりません。")
    return job


def job_view(storage: Storage, jobs: Jobs, queue: TaskQueue, job_id: str) -> dict[str, Any]:
    """The job with its stages (workers left out) and a URL for every artifact key."""
    job = jobs.get(job_id)
    data = job.public()
    data["task_id"] = job.id
    stages = queue.stages(job_id)
    if stages:
        data["stages"] = {name: {k: v for k, v in record.items() if k != "worker"}
                          for name, record in stages.items()}
    result = job.result or {}
    for key, value in list(result.items()):
        if key.endswith("_key") and isinstance(value, str):
            data.setdefault(key[:-4] + "_url", storage.url(value))
    return data


def list_jobs(jobs: Jobs, queue: TaskQueue, *, status: str | None, kind: str | None,
              limit: int, owner: str | None) -> dict[str, Any]:
    """Newest first, at most 500; ``owner`` None lists everyone's (an admin)."""
    listed = jobs.list(status=status, kind=kind, limit=min(max(limit, 1), 500), owner=owner)
    return {"jobs": [j.public() for j in listed], "counts": jobs.counts(),
            "queue_depth": queue.depth()}


def resolve_id(jobs: Jobs, shown: str) -> str:
    """The full job id for its first characters (as a table shows it) or a full id."""
    shown = (shown or "").strip()
    if len(shown) >= 32 or not shown:
        return shown
    matches = [j.id for j in jobs.list(limit=100_000) if j.id.startswith(shown)]
    return matches[0] if len(matches) == 1 else shown


def submit_diagnostics(queue: TaskQueue, params: dict[str, Any], *, priority: int,
                       expires: float | None, owner: str | None) -> dict[str, Any]:
    """Queue the tone job (a worker that answers it is alive)."""
    job = queue.submit(DIAGNOSTICS_KIND, params, priority=priority, expires=expires,
                       owner=owner)
    return {"task_id": job.id, "status": job.status, "status_url": f"/api/jobs/{job.id}"}
