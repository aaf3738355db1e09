"""The Jobs tab (Flower's role): queue depth, live workers, jobs by status and kind, cancel,
retry once the queue offers it, admin only through the auth hook, in both languages."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest

from app.services import Services
from app.ui import jobs as jobs_ui
from tests.conftest import LiveServer


def request(lang: str = "en", **headers: str) -> SimpleNamespace:
    return SimpleNamespace(headers={"accept-language": lang, **headers})


@pytest.fixture
def filled(services: Services) -> dict[str, str]:
    jobs = services.jobs
    done = jobs.create("message.generate", {}, ["render"])
    jobs.update(done.id, status="completed", progress=100.0)
    failed = jobs.create("image.process", {}, ["cutout"])
    jobs.update(failed.id, status="failed", error={"code": "IMAGE_BROKEN", "message": "x"})
    queued = services.queue.submit("diagnostics.tone", {"seconds": 0.1})
    return {"done": done.id, "failed": failed.id, "queued": queued.id}


def test_view_shows_depth_workers_and_filters_jobs(services, filled) -> None:
    services.queue.start_consumer(1, install_signals=False)
    try:
        deadline = time.monotonic() + 30
        while not jobs_ui.worker_rows(services):  # the worker thread says hello on start
            assert time.monotonic() < deadline
            time.sleep(0.05)
        summary, workers, rows = jobs_ui.view(services, "all", "all", 100, request())
        assert "**live workers:** 1" in summary and "failed: 1" in summary
        [worker] = workers["data"]
        assert worker[0] == services.queue.worker_name and worker[1] == "yes"
        assert len(rows["data"]) == 3
        assert rows["headers"][:3] == ["job", "kind", "status"]
        _, _, failed = jobs_ui.view(services, "failed", "all", 100, request())
        assert [(jobs_ui.resolve_id(services, r[0]), r[2], r[-1]) for r in failed["data"]] == [
            (filled["failed"], "failed", "IMAGE_BROKEN")]
        _, _, images = jobs_ui.view(services, "all", "image.process", 100, request())
        assert [r[0] for r in images["data"]] == [filled["failed"][:jobs_ui.SHORT_ID]]
        # in Japanese: headers, status words and kinds from the catalogue
        summary, _, rows = jobs_ui.view(services, "failed", "all", 100, request("ja"))
        assert rows["headers"][:3] == ["ジョブ", "種類", "状態"]
        assert rows["data"][0][1:3] == ["画像：処理（API）", "失敗"]
        assert "失敗: 1" in summary
    finally:
        services.queue.stop_consumer()
    assert jobs_ui.worker_rows(services) == []  # a clean stop leaves the list


def test_cancel_a_queued_job_and_refuse_a_finished_one(services, filled) -> None:
    message = jobs_ui.cancel(services, filled["queued"])
    assert "Cancel requested" in message and "cancelled" in message
    assert services.jobs.get(filled["queued"]).status == "cancelled"
    assert "already completed" in jobs_ui.cancel(services, filled["done"])
    assert "ジョブ" in jobs_ui.cancel(services, "nope", "ja")  # not found, in Japanese
    assert jobs_ui.cancel(services, "  ") == jobs_ui.plain("jobs.no_id")


def test_retry_requeues_a_failed_job_and_refuses_others(services, filled) -> None:
    message = jobs_ui.retry(services, filled["failed"])
    assert "queued again" in message
    assert services.jobs.get(filled["failed"]).status == "queued"
    refused = jobs_ui.retry(services, filled["done"])
    assert "retried" in refused.lower() or "再試行" in refused
    assert services.jobs.get(filled["done"]).status == "completed"


def test_admin_hook_guards_view_and_actions(services, filled) -> None:
    services.ui.is_admin = lambda req: req.headers.get("x-admin") == "yes"
    summary, workers, rows = jobs_ui.view(services, "all", "all", 100, request("ja"))
    assert summary == jobs_ui.plain("jobs.forbidden", "ja")
    assert workers["data"] == rows["data"] == []
    out = jobs_ui.act(services, jobs_ui.cancel, filled["queued"], "all", "all", 100, request())
    assert out[0] == jobs_ui.plain("jobs.forbidden") and out[3]["data"] == []
    assert services.jobs.get(filled["queued"]).status == "queued"  # nothing happened
    allowed = jobs_ui.act(services, jobs_ui.cancel, filled["queued"], "all", "all", 100,
                          request(**{"x-admin": "yes"}))
    assert "Cancel requested" in allowed[0] and len(allowed[3]["data"]) == 3

    def broken(req):
        raise RuntimeError("auth store down")

    services.ui.is_admin = broken
    assert not jobs_ui.is_admin(services, request())  # a failing check denies


def test_tables_render_in_gradio(services, filled) -> None:
    """What the page shows, as Gradio renders both tables: every job once, its status in
    Japanese; the live worker with its name, state, threads and version."""
    from app.config import VERSION

    services.queue.start_consumer(1, install_signals=False)
    try:
        deadline = time.monotonic() + 30
        while not jobs_ui.worker_rows(services):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        _, workers, rows = jobs_ui.view(services, "all", "all", 100, request("ja"))
    finally:
        services.queue.stop_consumer()
    shown = gr.Dataframe().postprocess(rows)
    assert shown.headers[:3] == ["ジョブ", "種類", "状態"]
    assert sorted(jobs_ui.resolve_id(services, row[0]) for row in shown.data) == \
        sorted(filled.values())
    statuses = {jobs_ui.resolve_id(services, row[0]): row[2] for row in shown.data}
    assert statuses[filled["done"]] == "完了" and statuses[filled["failed"]] == "失敗"
    table = gr.Dataframe().postprocess(workers)
    assert table.headers == [jobs_ui.plain(c, "ja") for c in jobs_ui.WORKER_COLUMNS]
    assert table.headers[:3] == ["ワーカー", "稼働", "スレッド"]
    [worker] = table.data
    assert worker[0] == services.queue.worker_name
    assert worker[1] == jobs_ui.plain("word.yes", "ja") != jobs_ui.plain("word.no", "ja")
    assert int(worker[2]) == 1 and float(worker[3]) >= 0 and worker[5] == VERSION


@pytest.mark.slow
def test_jobs_tab_is_mounted(services) -> None:
    with LiveServer(services, with_ui=True) as server:
        config = httpx.get(server.url + "/config").json()
    tabs = {c["props"].get("id") for c in config["components"] if c["type"] == "tabitem"}
    assert "jobs" in tabs
    assert config["i18n_translations"]["ja"]["tab.jobs"] == "ジョブ"
    headers = [c["props"].get("headers") for c in config["components"]
               if c["type"] == "dataframe"]
    assert any(h and h[0] == "job" for h in headers)
    kinds = next(c["props"]["choices"] for c in config["components"]
                 if c["props"].get("elem_id") == "jobs-kind")
    values = [value for _, value in kinds]
    assert {"all", "message.generate", "voice.synthesize", "image.cutout", "prosody.adjust",
            "bgm.mix", "video.render"} <= set(values)
