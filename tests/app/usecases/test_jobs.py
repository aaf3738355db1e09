"""app/usecases/jobs.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

import pytest

from app.services import Services
from app.usecases import jobs
from models.errors import NotFound


def test_jobs_view_list_and_short_ids(services: Services) -> None:
    answer = jobs.submit_diagnostics(services.queue, {"seconds": 0.2, "slices": 1, "delay": 0},
                                     priority=0, expires=None, owner="alice")
    job_id = answer["task_id"]
    assert answer["status_url"] == f"/api/jobs/{job_id}"
    assert jobs.resolve_id(services.jobs, job_id[:10]) == job_id
    assert jobs.resolve_id(services.jobs, "zz-no-such") == "zz-no-such"
    with pytest.raises(NotFound) as caught:
        jobs.visible_job(services.jobs, job_id, lambda owner: owner == "bob")
    assert caught.value.code == "QUEUE_JOB_NOT_FOUND"
    view = jobs.job_view(services.storage, services.jobs, services.queue, job_id)
    assert view["task_id"] == view["job_id"] == job_id and "owner" in view
    listed = jobs.list_jobs(services.jobs, services.queue, status=None, kind=None, limit=0,
                            owner="alice")
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    assert "diagnostics.tone" in jobs.queue_kinds()
