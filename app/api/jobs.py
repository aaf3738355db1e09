"""Any job's status, cancel, and the diagnostics job that proves a worker is alive."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.envelope import ok
from app.api.schemas import ERRORS, Envelope, JobList, JobView, TaskAccepted
from app.api.security import owner_of, principal
from app.runner.jobs import Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage
from app.usecases import jobs as work


class ToneJobRequest(BaseModel):
    seconds: float = Field(1.0, ge=0.1, le=10.0)
    slices: int = Field(4, ge=1, le=100)
    delay: float = Field(0.0, ge=0.0, le=5.0)
    priority: int = Field(0, ge=0, le=10)
    expires: float | None = Field(None, gt=0, le=86400, description="seconds in the queue")


def create_router(storage: Storage, jobs: Jobs, queue: TaskQueue) -> APIRouter:
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])

    def seen(job_id: str, request: Request) -> None:
        work.visible_job(jobs, job_id, principal(request).owns)

    @router.get("/{job_id}", response_model=Envelope[JobView], responses=ERRORS)
    def get_job(job_id: str, request: Request) -> JSONResponse:
        seen(job_id, request)
        return ok(work.job_view(storage, jobs, queue, job_id))

    @router.post("/{job_id}/cancel", response_model=Envelope[JobView], responses=ERRORS)
    def cancel_job(job_id: str, request: Request) -> JSONResponse:
        seen(job_id, request)
        queue.cancel(job_id)
        return ok(work.job_view(storage, jobs, queue, job_id))

    @router.post("/{job_id}/retry", status_code=202, response_model=Envelope[JobView],
                 responses=ERRORS)
    def retry_job(job_id: str, request: Request) -> JSONResponse:
        """Resume a failed or cancelled job; finished stages are kept, not redone."""
        seen(job_id, request)
        queue.retry(job_id)
        return ok(work.job_view(storage, jobs, queue, job_id), status_code=202)

    @router.get("", response_model=Envelope[JobList])
    def list_jobs(request: Request, status: str | None = None, kind: str | None = None,
                  limit: int = 50) -> JSONResponse:
        who = principal(request)
        return ok(work.list_jobs(jobs, queue, status=status, kind=kind, limit=limit,
                                 owner=None if who.is_admin else who.user_id))

    @router.post("/diagnostics", status_code=202, response_model=Envelope[TaskAccepted])
    def diagnostics(body: ToneJobRequest, request: Request) -> JSONResponse:
        return ok(work.submit_diagnostics(
            queue, body.model_dump(exclude={"priority", "expires"}), priority=body.priority,
            expires=body.expires, owner=owner_of(request)), status_code=202)

    return router
