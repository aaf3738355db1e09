"""The Jobs tab: what Flower shows for Celery, for our huey queue.

Queue depth, the worker processes alive right now (from their heartbeat records, so workers
on other machines show too), every job filtered by status and kind, and retry / cancel.

Admin only once authentication is on: the auth layer plugs in by putting a callable
``desk.ui.is_admin(request: gr.Request) -> bool`` in place (see :func:`is_admin`);
without it (auth off, localhost) everyone who can open the UI may use this tab.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gradio as gr

from app.i18n import step_text
from app.runner.heartbeat import live_workers
from app.runner.jobs import STATUSES, Job, Jobs
from app.runner.queue import TaskQueue
from app.services import UiSessions
from app.ui.text import label, plain, register, request_language, shown_time, t, word
from app.ui.text import table as headed
from app.ui.work import UI_KINDS
from app.usecases import jobs as work
from models.errors import StudioError

ALL = "all"
# (summary or refusal, worker table, job table): what the tab shows
JobsView = tuple[str, dict[str, Any], dict[str, Any]]
# an action's message, then the refreshed view
ActionView = tuple[str, str, dict[str, Any], dict[str, Any]]


class JobsParts(Protocol):
    """What the Jobs tab reads: the job store, the queue (depth, workers, cancel, retry)
    and the UI sessions (whose ``is_admin`` the login puts in once the page is built)."""

    @property
    def jobs(self) -> Jobs: ...

    @property
    def queue(self) -> TaskQueue: ...

    @property
    def ui(self) -> UiSessions: ...


@dataclass(frozen=True)
class JobsDesk:
    """The Jobs tab's parts, as app.ui hands them over."""

    jobs: Jobs
    queue: TaskQueue
    ui: UiSessions


SHORT_ID = 12  # enough to be unique among a studio's jobs; the full id is resolved on pick
JOB_COLUMNS = ["jobs.col_id", "jobs.col_kind", "jobs.col_status", "jobs.col_progress",
               "jobs.col_step", "jobs.col_worker", "jobs.col_attempts", "jobs.col_created",
               "jobs.col_updated", "jobs.col_error"]
WORKER_COLUMNS = ["jobs.col_worker", "jobs.col_live", "jobs.col_threads", "jobs.col_beat",
                  "jobs.col_up", "jobs.col_version"]
# shares of a wide screen, never narrower than an id or a time on one line (at 390 px the
# shares alone left a character per line)
JOB_WIDTHS: list[str | int] = [f"max({share}%, {least}em)" for share, least in (
    (10, 9), (11, 8), (9, 5), (5, 3), (11, 7), (9, 7), (5, 3), (14, 11), (14, 11), (11, 8))]

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
        "jobs.not_queued": "This work ran in its tab, not on the queue: run it again there.",
        "jobs.col_id": "job", "jobs.col_kind": "kind", "jobs.col_status": "status",
        "jobs.col_progress": "%", "jobs.col_step": "step", "jobs.col_worker": "worker",
        "jobs.col_attempts": "runs", "jobs.col_created": "created",
        "jobs.col_updated": "updated", "jobs.col_error": "error", "jobs.col_live": "live",
        "jobs.col_threads": "threads", "jobs.col_beat": "last beat (s ago)",
        "jobs.col_up": "up since", "jobs.col_version": "version",
    },
    ja={
        "tab.jobs": "ジョブ",
        "jobs.title": "### キューとワーカー",
        "jobs.status": "状態", "jobs.kind": "種類", "jobs.limit": "表示件数",
        "jobs.refresh": "更新", "jobs.auto": "5 秒ごとに更新",
        "jobs.job_id": "ジョブ ID", "jobs.retry": "再試行", "jobs.cancel": "キャンセル",
        "jobs.workers": "ワーカー", "jobs.jobs": "ジョブ一覧",
        "jobs.summary": "**キューの長さ:** {depth} 件 · **稼働ワーカー:** {live} · {counts}",
        "jobs.depth_unknown": "不明（キューに接続できません）",
        "jobs.forbidden": "キューの表示と操作は管理者のみです。",
        "jobs.no_id": "先にジョブ ID を入力してください。",
        "jobs.cancelled": "ジョブ {job_id} のキャンセルを要求しました（現在: {status}）。",
        "jobs.retried": "ジョブ {job_id} を再投入しました（現在: {status}）。",
        "jobs.not_queued": "この処理はタブの中で実行されたもので、キューからは再試行できません。"
                           "元のタブでもう一度実行してください。",
        "jobs.col_id": "ジョブ", "jobs.col_kind": "種類", "jobs.col_status": "状態",
        "jobs.col_progress": "%", "jobs.col_step": "工程", "jobs.col_worker": "ワーカー",
        "jobs.col_attempts": "実行回数", "jobs.col_created": "作成",
        "jobs.col_updated": "更新", "jobs.col_error": "エラー", "jobs.col_live": "稼働",
        "jobs.col_threads": "スレッド", "jobs.col_beat": "最終応答（秒前）",
        "jobs.col_up": "起動時刻", "jobs.col_version": "バージョン",
    },
)


def is_admin(desk: JobsParts, request: gr.Request | None) -> bool:
    """The auth hook: ``desk.ui.is_admin`` decides once auth exists; else allow."""
    check = desk.ui.is_admin
    if check is None:
        return True
    try:
        return bool(check(request))
    except Exception:  # a failing check denies, never opens
        return False


def _ago(ts: float | None, now: float) -> str:
    return "" if ts is None else f"{max(now - ts, 0.0):.0f}"


def summary(desk: JobsParts, lang: str = "en") -> str:
    depth = desk.queue.depth()
    live, _ = live_workers(desk.queue.huey)
    counts = " · ".join(f"{word('status.', status, lang)}: {n}"
                        for status, n in desk.jobs.counts().items())
    return plain("jobs.summary", lang).format(
        depth=depth if depth >= 0 else plain("jobs.depth_unknown", lang), live=len(live),
        counts=counts)


def worker_rows(desk: JobsParts, lang: str = "en") -> list[list[Any]]:
    live, stale = live_workers(desk.queue.huey)
    now = time.time()
    yes, no = plain("word.yes", lang), plain("word.no", lang)
    return [[r.worker, yes if r.live(now) else no, r.threads if r.live(now) else 0,
             _ago(r.last_seen, now), shown_time(r.started_at, lang), r.version] for r in live + stale]


def job_kinds() -> list[str]:
    """Every kind of work: the queue's job kinds and the work tabs record themselves."""
    return sorted({*work.queue_kinds(), *UI_KINDS})


def job_row(job: Job, lang: str = "en") -> list[Any]:
    error = (job.error or {}).get("code", "")
    return [job.id[:SHORT_ID], word("kind.", job.kind, lang), word("status.", job.status, lang),
            round(job.progress, 1), step_text(job.current_step, lang), job.worker or "",
            job.attempts, shown_time(job.created_at, lang), shown_time(job.updated_at, lang),
            error]


def job_rows(desk: JobsParts, status: str = ALL, kind: str = ALL,
             limit: int = 100, lang: str = "en") -> list[list[Any]]:
    jobs = desk.jobs.list(status=None if status in (ALL, "", None) else status,
                              kind=None if kind in (ALL, "", None) else kind,
                              limit=int(min(max(limit, 1), 1000)))
    return [job_row(j, lang) for j in jobs]


def resolve_id(desk: JobsParts, shown: str) -> str:
    """The full job id for what the table shows (its first characters) or a pasted full id."""
    return work.resolve_id(desk.jobs, shown)


def cancel(desk: JobsParts, job_id: str, lang: str = "en") -> str:
    job_id = resolve_id(desk, job_id)
    if not job_id:
        return plain("jobs.no_id", lang)
    try:
        job = desk.queue.cancel(job_id)
    except StudioError as exc:
        return (exc.message_ja if lang == "ja" and exc.message_ja else exc.message)
    return plain("jobs.cancelled", lang).format(job_id=job_id,
                                                status=word("status.", job.status, lang))


def retry(desk: JobsParts, job_id: str, lang: str = "en") -> str:
    """Resume a failed or cancelled job from its failed stage (``TaskQueue.retry``)."""
    job_id = resolve_id(desk, job_id)
    if not job_id:
        return plain("jobs.no_id", lang)
    try:
        if desk.jobs.get(job_id).kind in UI_KINDS:
            return plain("jobs.not_queued", lang)
        job = desk.queue.retry(job_id)
    except StudioError as exc:
        return (exc.message_ja if lang == "ja" and exc.message_ja else exc.message)
    return plain("jobs.retried", lang).format(job_id=job_id,
                                              status=word("status.", job.status, lang))


def view(desk: JobsParts, status: str, kind: str, limit: float,
         request: gr.Request | None) -> JobsView:
    """(summary, worker table, job table) for an admin; a refusal and empty tables for
    others. Headers, statuses and kinds are in the page's language."""
    lang = request_language(request)
    if not is_admin(desk, request):
        return (plain("jobs.forbidden", lang), headed(WORKER_COLUMNS, [], lang),
                headed(JOB_COLUMNS, [], lang))
    return (summary(desk, lang), headed(WORKER_COLUMNS, worker_rows(desk, lang), lang),
            headed(JOB_COLUMNS, job_rows(desk, status, kind, int(limit), lang), lang))


def act(desk: JobsParts, action: Callable[[JobsParts, str, str], str], job_id: str,
        status: str, kind: str, limit: float, request: gr.Request | None) -> ActionView:
    """Run ``cancel`` or ``retry`` for an admin, then refresh the view."""
    lang = request_language(request)
    if not is_admin(desk, request):
        return (plain("jobs.forbidden", lang), *view(desk, status, kind, limit, request))
    message = action(desk, job_id, lang)
    return (message, *view(desk, status, kind, limit, request))


def build(desk: JobsParts) -> None:
    """The tab over its parts (:class:`JobsDesk`), never the whole app."""
    kinds = [(t("word.all"), ALL), *[(label("kind.", k), k) for k in job_kinds()]]

    def show(status: str, kind: str, limit: float, request: gr.Request) -> JobsView:
        return view(desk, status, kind, limit, request)

    def do_cancel(job_id: str, status: str, kind: str, limit: float,
                  request: gr.Request) -> ActionView:
        return act(desk, cancel, job_id, status, kind, limit, request)

    def do_retry(job_id: str, status: str, kind: str, limit: float,
                 request: gr.Request) -> ActionView:
        return act(desk, retry, job_id, status, kind, limit, request)

    gr.Markdown(t("jobs.title"))
    overview = gr.Markdown()
    with gr.Row():
        status = gr.Dropdown([(t("word.all"), ALL), *[(t(f"status.{s}"), s) for s in STATUSES]],
                             value=ALL, label=t("jobs.status"), elem_id="jobs-status")
        kind = gr.Dropdown(kinds, value=ALL, label=t("jobs.kind"), elem_id="jobs-kind")
        limit = gr.Slider(10, 500, value=100, step=10, label=t("jobs.limit"))
        with gr.Column(min_width=120):
            refresh = gr.Button(t("jobs.refresh"), size="sm", elem_id="jobs-refresh")
            auto = gr.Checkbox(False, label=t("jobs.auto"))
    workers = gr.Dataframe(headers=[plain(c) for c in WORKER_COLUMNS], label=t("jobs.workers"),
                           interactive=False, wrap=True)
    jobs = gr.Dataframe(headers=[plain(c) for c in JOB_COLUMNS], label=t("jobs.jobs"),
                        interactive=False, wrap=True, column_widths=JOB_WIDTHS,
                        elem_id="jobs-table")
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
        return resolve_id(desk, str(row[0])) if row else ""

    jobs.select(pick, None, job_id, api_visibility="private")
