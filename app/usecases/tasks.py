"""What a per-capability status route (``/api/image/status``, ``/api/voice/status``) shows
of a job: the job itself, looked up so that someone else's task reads exactly like a missing
one, and the progress fields every such answer starts with."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from app.runner.jobs import Job, Jobs
from models.errors import NotFound


def owned_task(jobs: Jobs, task_id: str, kind: str | Collection[str],
               owns: Callable[[str | None], bool], missing: Callable[[], NotFound]) -> Job:
    """The job ``task_id`` of ``kind`` (or one of several kinds a route serves) if ``owns``
    its owner; else ``missing()`` is raised, so a stranger cannot tell another user's task
    from one that does not exist."""
    kinds = {kind} if isinstance(kind, str) else set(kind)
    try:
        job: Job | None = jobs.get(task_id)
    except NotFound:
        job = None
    if job is None or job.kind not in kinds or not owns(job.owner):
        raise missing()
    return job


def progress_fields(job: Job) -> dict[str, Any]:
    return {
        "task_id": job.id, "status": job.status, "current_step": job.current_step,
        "progress": round(job.progress, 1), "steps_completed": job.steps_completed,
        "steps_remaining": job.steps_remaining, "created_at": job.created_at,
    }
