"""Work a tab does in the request is recorded as a job, so the Jobs tab lists every kind."""

from __future__ import annotations

import pytest

from app.ui import jobs as jobs_ui
from app.ui.work import UI_KINDS, recorded
from models.errors import StudioError


def test_finished_work_is_a_completed_job(services) -> None:
    with recorded(services.jobs, services, "voice.synthesize", {"chars": 5}) as job:
        assert services.jobs.get(job.id).status == "processing"
    done = services.jobs.get(job.id)
    assert (done.kind, done.status, done.progress, done.worker) == (
        "voice.synthesize", "completed", 100.0, None)
    assert done.finished_at is not None
    _, _, table = jobs_ui.view(services, "all", "voice.synthesize", 100, None)
    assert [row[0] for row in table["data"]] == [job.id[:jobs_ui.SHORT_ID]]


def test_failed_work_keeps_its_error_code_and_is_not_retried_from_the_queue(services) -> None:
    with pytest.raises(StudioError), recorded(services.jobs, services, "image.cutout", {}) as job:
        raise StudioError("No person.", code="IMAGE_NO_PERSON", message_ja="人物がいません。")
    failed = services.jobs.get(job.id)
    assert failed.status == "failed" and failed.error["code"] == "IMAGE_NO_PERSON"
    assert jobs_ui.retry(services, job.id[:12], "ja") == jobs_ui.plain("jobs.not_queued", "ja")
    assert services.jobs.get(job.id).status == "failed"
    with pytest.raises(ZeroDivisionError), recorded(services.jobs, services, "bgm.mix", {}) as other:
        1 / 0  # noqa: B018 - any failure is recorded, then raised
    assert services.jobs.get(other.id).error["code"] == "UI_ERROR"


def test_recovery_leaves_tab_work_alone(services) -> None:
    job = services.jobs.create("video.render", {})
    services.jobs.update(job.id, status="processing")
    with recorded(services.jobs, services, "video.preview", {}) as ui_job:
        assert ui_job.id not in services.queue.recover()


def test_every_kind_has_a_word_in_both_languages() -> None:
    from app.ui.text import plain

    for kind in jobs_ui.job_kinds():
        assert plain(f"kind.{kind}") != f"kind.{kind}", kind
        assert plain(f"kind.{kind}", "ja") != plain(f"kind.{kind}"), kind
    assert set(UI_KINDS) <= set(jobs_ui.job_kinds())
    assert "message.generate" in jobs_ui.job_kinds()
