"""The Jobs tab: what Flower shows for Celery, for our huey queue.

Queue depth, the worker processes alive right now (from their heartbeat records, so workers
on other machines show too), every job filtered by status and kind, and retry / cancel.

Admin only once authentication is on: the auth layer plugs in by putting a callable
``services.extras["is_admin"](request: gr.Request) -> bool`` in place (see :func:`is_admin`);
without it (auth off, localhost) everyone who can open the UI may use this tab.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr

from app.heartbeat import live_workers
from app.jobs import STATUSES, Job
from app.services import Services
from app.ui.text import plain, register, request_language, t
from models.errors import StudioError
from pipelines import tasks as pipeline_tasks

ADMIN_HOOK = "is_admin"  # services.extras key the auth layer sets
ALL = "all"
JOB_HEADERS = ["job_id", "kind", "status", "progress", "step", "worker", "attempts",
               "created", "updated", "error"]
WORKER_HEADERS = ["worker", "live", "threads", "last beat (s ago)", "up since", "version"]

register(
    en={
        "tab.jobs": "Jobs",
        "jobs.title": "### Queue and workers",
        "jobs.status": "Status", "jobs.kind": "Kind", "jobs.limit": "Show at most",
        "jobs.refresh": "Refresh", "jobs.auto": "Refresh every 5 s",
        "jobs.job_id": "Job id", "jobs.retry": "Retry", "jobs.cancel": "Cancel",
        "jobs.workers": "Workers", "jobs.jobs": "Jobs",
        "jobs.summary": "**Queue depth:** {depth} · **live workers:** {live} · {counts}",
        "jobs.depth_unknown": "unknown (queue unreachable)",
        "jobs.forbidden": "Only administrators can see and manage the queue.",
        "jobs.no_id": "Enter a job id first.",
        "jobs.cancelled": "Cancel requested for job {job_id} (now {status}).",
        "jobs.retried": "Job {job_id} queued again (now {status}).",
    },
    ja={
        "tab.jobs": "ジョブ",
        "jobs.title": "### キューとワーカー",
        "jobs.status": "状態", "jobs.kind": "種類", "jobs.limit": "表示件数",
        "jobs.refresh": "更新", "jobs.auto": "5 秒ごとに更新",
        "jobs.job_id": "ジョブ ID", "jobs.retry": "再試行", "jobs.cancel": "キャンセル",
        "jobs.workers": "ワーカー", "jobs.jobs": "ジョブ一覧",
        "jobs.summary": "**待機中:** {depth} 件 · **稼働ワーカー:** {live} · {counts}",
        "jobs.depth_unknown": "不明（キューに接続できません）",
        "jobs.forbidden": "キューの表示と操作は管理者のみです。",
        "jobs.no_id": "先にジョブ ID を入力してください。",
        "jobs.cancelled": "ジョブ {job_id} のキャンセルを要求しました（現在: {status}）。",
        "jobs.retried": "ジョブ {job_id} を再投入しました（現在: {status}）。",
    },
)


def is_admin(services: Services, request: gr.Request | None) -> bool:
    """The auth hook: ``services.extras["is_admin"]`` decides once auth exists; else allow."""
    check: Callable[[Any], bool] | None = services.extras.get(ADMIN_HOOK)
    if check is None:
        return True
    try:
        return bool(check(request))
    except Exception:  # noqa: BLE001 - a failing check denies, never opens
        return False


def _ago(ts: float | None, now: float) -> str:
    return "" if ts is None else f"{max(now - ts, 0.0):.0f}"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def summary(services: Services, lang: str = "en") -> str:
    depth = services.queue.depth()
    live, _ = live_workers(services.queue.huey)
    counts = " · ".join(f"{status}: {n}" for status, n in services.jobs.counts().items())
    return plain("jobs.summary", lang).format(
        depth=depth if depth >= 0 else plain("jobs.depth_unknown", lang), live=len(live),
        counts=counts)


def worker_rows(services: Services) -> list[list[Any]]:
    live, stale = live_workers(services.queue.huey)
    now = time.time()
    return [[r.worker, "yes" if r.live(now) else "no", r.threads if r.live(now) else 0,
             _ago(r.last_seen, now), _when(r.started_at), r.version] for r in live + stale]


def job_row(job: Job) -> list[Any]:
    error = (job.error or {}).get("code", "")
    return [job.id, job.kind, job.status, round(job.progress, 1), job.current_step or "",
            job.worker or "", job.attempts, _when(job.created_at), _when(job.updated_at), error]


def job_rows(services: Services, status: str = ALL, kind: str = ALL,
             limit: int = 100) -> list[list[Any]]:
    jobs = services.jobs.list(status=None if status in (ALL, "", None) else status,
                              kind=None if kind in (ALL, "", None) else kind,
                              limit=int(min(max(limit, 1), 1000)))
    return [job_row(j) for j in jobs]


def cancel(services: Services, job_id: str, lang: str = "en") -> str:
    job_id = (job_id or "").strip()
    if not job_id:
        return plain("jobs.no_id", lang)
    try:
        job = services.queue.cancel(job_id)
    except StudioError as exc:
        return (exc.message_ja if lang == "ja" and exc.message_ja else exc.message)
    return plain("jobs.cancelled", lang).format(job_id=job_id, status=job.status)


def retry(services: Services, job_id: str, lang: str = "en") -> str:
    """Resume a failed or cancelled job from its failed stage (``TaskQueue.retry``)."""
    job_id = (job_id or "").strip()
    if not job_id:
        return plain("jobs.no_id", lang)
    try:
        job = services.queue.retry(job_id)
    except StudioError as exc:
        return (exc.message_ja if lang == "ja" and exc.message_ja else exc.message)
    return plain("jobs.retried", lang).format(job_id=job_id, status=job.status)


def view(services: Services, status: str, kind: str, limit: float,
         request: gr.Request | None) -> tuple[str, list[list[Any]], list[list[Any]]]:
    """(summary, worker rows, job rows) for an admin; a refusal and nothing for others."""
    lang = request_language(request)
    if not is_admin(services, request):
        return plain("jobs.forbidden", lang), [], []
    return (summary(services, lang), worker_rows(services),
            job_rows(services, status, kind, int(limit)))


def act(services: Services, action: Callable[[Services, str, str], str], job_id: str,
        status: str, kind: str, limit: float, request: gr.Request | None) -> tuple:
    """Run ``cancel`` or ``retry`` for an admin, then refresh the view."""
    lang = request_language(request)
    if not is_admin(services, request):
        return (plain("jobs.forbidden", lang), *view(services, status, kind, limit, request))
    message = action(services, job_id, lang)
    return (message, *view(services, status, kind, limit, request))


def build(services: Services) -> None:
    kinds = [ALL, *sorted(pipeline_tasks.HANDLERS)]

    def show(status: str, kind: str, limit: float, request: gr.Request) -> tuple:
        return view(services, status, kind, limit, request)

    def do_cancel(job_id: str, status: str, kind: str, limit: float,
                  request: gr.Request) -> tuple:
        return act(services, cancel, job_id, status, kind, limit, request)

    def do_retry(job_id: str, status: str, kind: str, limit: float,
                 request: gr.Request) -> tuple:
        return act(services, retry, job_id, status, kind, limit, request)

    gr.Markdown(t("jobs.title"))
    overview = gr.Markdown()
    with gr.Row():
        status = gr.Dropdown([ALL, *STATUSES], value=ALL, label=t("jobs.status"))
        kind = gr.Dropdown(kinds, value=ALL, label=t("jobs.kind"), allow_custom_value=True)
        limit = gr.Slider(10, 500, value=100, step=10, label=t("jobs.limit"))
        with gr.Column(min_width=120):
            refresh = gr.Button(t("jobs.refresh"), size="sm")
            auto = gr.Checkbox(False, label=t("jobs.auto"))
    workers = gr.Dataframe(headers=WORKER_HEADERS, label=t("jobs.workers"),
                           interactive=False, wrap=True)
    jobs = gr.Dataframe(headers=JOB_HEADERS, label=t("jobs.jobs"), interactive=False,
                        wrap=True)
    with gr.Row():
        job_id = gr.Textbox(label=t("jobs.job_id"), max_lines=1, scale=3)
        retry_button = gr.Button(t("jobs.retry"), size="sm", scale=1)
        cancel_button = gr.Button(t("jobs.cancel"), size="sm", variant="stop", scale=1)
    message = gr.Markdown()
    timer = gr.Timer(5.0, active=False)

    filters = [status, kind, limit]
    views = [overview, workers, jobs]
    # on page load and on every filter change, then on demand or every 5 s
    gr.on(None, show, inputs=filters, outputs=views, api_visibility="private",
          show_progress="hidden")
    gr.on([refresh.click, timer.tick], show, inputs=filters, outputs=views,
          api_visibility="private", show_progress="hidden")
    auto.change(lambda on: gr.Timer(active=on), inputs=auto, outputs=timer,
                api_visibility="private")
    cancel_button.click(do_cancel, inputs=[job_id, *filters], outputs=[message, *views],
                        api_visibility="private")
    retry_button.click(do_retry, inputs=[job_id, *filters], outputs=[message, *views],
                       api_visibility="private")

    def pick(evt: gr.SelectData) -> str:
        row = evt.row_value or []
        return str(row[0]) if row else ""

    jobs.select(pick, None, job_id, api_visibility="private")
