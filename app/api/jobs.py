"""Any job's status, cancel, and the diagnostics job that proves a worker is alive."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.envelope import ok
from app.services import Services


class ToneJobRequest(BaseModel):
    seconds: float = Field(1.0, ge=0.1, le=10.0)
    slices: int = Field(4, ge=1, le=100)
    delay: float = Field(0.0, ge=0.0, le=5.0)
    priority: int = Field(0, ge=0, le=10)
    expires: float | None = Field(None, gt=0, le=86400, description="seconds in the queue")


def job_view(services: Services, job_id: str) -> dict:
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
    def get_job(job_id: str) -> JSONResponse:
        return ok(job_view(services, job_id))

    @router.post("/{job_id}/cancel")
    def cancel_job(job_id: str) -> JSONResponse:
        services.queue.cancel(job_id)
        return ok(job_view(services, job_id))

    @router.post("/{job_id}/retry", status_code=202)
    def retry_job(job_id: str) -> JSONResponse:
        """Resume a failed or cancelled job; finished stages are kept, not redone."""
        services.queue.retry(job_id)
        return ok(job_view(services, job_id), status_code=202)

    @router.get("")
    def list_jobs(status: str | None = None, kind: str | None = None,
                  limit: int = 50) -> JSONResponse:
        jobs = services.jobs.list(status=status, kind=kind, limit=min(max(limit, 1), 500))
        return ok({"jobs": [j.public() for j in jobs], "counts": services.jobs.counts(),
                   "queue_depth": services.queue.depth()})

    @router.post("/diagnostics", status_code=202)
    def diagnostics(request: ToneJobRequest) -> JSONResponse:
        job = services.queue.submit(
            "diagnostics.tone", request.model_dump(exclude={"priority", "expires"}),
            priority=request.priority, expires=request.expires)
        return ok({"task_id": job.id, "status": job.status,
                   "status_url": f"/api/jobs/{job.id}"}, status_code=202)

    return router
