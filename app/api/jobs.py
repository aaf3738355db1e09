"""Any job's status, cancel, and the diagnostics job that proves a worker is alive."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.envelope import ok
from app.api.security import owner_of, principal
from app.runner.jobs import Job
from app.services import Services
from models.errors import NotFound


class ToneJobRequest(BaseModel):
    seconds: float = Field(1.0, ge=0.1, le=10.0)
    slices: int = Field(4, ge=1, le=100)
    delay: float = Field(0.0, ge=0.0, le=5.0)
    priority: int = Field(0, ge=0, le=10)
    expires: float | None = Field(None, gt=0, le=86400, description="seconds in the queue")


def visible_job(services: Services, request: Request, job_id: str) -> Job:
    """The job, if the caller may see it; someone else's job reads as not found."""
    job = services.jobs.get(job_id)
    if not principal(request).owns(job.owner):
        raise NotFound(f"No job {job_id!r}.", code="QUEUE_JOB_NOT_FOUND",
                       message_ja=f"ジョブ {job_id!r} が見つかりません。")
    return job


def job_view(services: Services, job_id: str) -> dict[str, Any]:
    job = services.jobs.get(job_id)
    data = job.public()
    data["task_id"] = job.id
    stages = services.queue.stages(job_id)
    if stages:
        data["stages"] = {name: {k: v for k, v in record.items() if k != "worker"}
                          for name, record in stages.items()}
    result = job.result or {}
    for key, value in list(result.items()):
        if key.endswith("_key") and isinstance(value, str):
            data.setdefault(key[:-4] + "_url", services.storage.url(value))
    return data


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])

    @router.get("/{job_id}")
    def get_job(job_id: str, request: Request) -> JSONResponse:
        visible_job(services, request, job_id)
        return ok(job_view(services, job_id))

    @router.post("/{job_id}/cancel")
    def cancel_job(job_id: str, request: Request) -> JSONResponse:
        visible_job(services, request, job_id)
        services.queue.cancel(job_id)
        return ok(job_view(services, job_id))

    @router.post("/{job_id}/retry", status_code=202)
    def retry_job(job_id: str, request: Request) -> JSONResponse:
        """Resume a failed or cancelled job; finished stages are kept, not redone."""
        visible_job(services, request, job_id)
        services.queue.retry(job_id)
        return ok(job_view(services, job_id), status_code=202)

    @router.get("")
    def list_jobs(request: Request, status: str | None = None, kind: str | None = None,
                  limit: int = 50) -> JSONResponse:
        who = principal(request)
        jobs = services.jobs.list(status=status, kind=kind, limit=min(max(limit, 1), 500),
                                  owner=None if who.is_admin else who.user_id)
        return ok({"jobs": [j.public() for j in jobs], "counts": services.jobs.counts(),
                   "queue_depth": services.queue.depth()})

    @router.post("/diagnostics", status_code=202)
    def diagnostics(body: ToneJobRequest, request: Request) -> JSONResponse:
        job = services.queue.submit(
            "diagnostics.tone", body.model_dump(exclude={"priority", "expires"}),
            priority=body.priority, expires=body.expires, owner=owner_of(request))
        return ok({"task_id": job.id, "status": job.status,
                   "status_url": f"/api/jobs/{job.id}"}, status_code=202)

    return router
