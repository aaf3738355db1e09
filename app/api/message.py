"""The one-click message over REST and its history.

``POST /api/video/generate`` with a multipart body lands here (the JSON body is the plain
render path in ``app/api/video.py``): ``image``, ``text``, ``voice_profile`` (a profile id or a
built-in voice), ``bgm_type``, and optionally ``emotion``, ``size``, ``subtitles``,
``language``, ``background``, ``bgm_volume``. The answer is 202 with a ``task_id`` to poll at
``GET /api/video/status/{task_id}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from app.api.envelope import ok
from app.api.schemas import ERRORS, Envelope, MessageDeleted, MessageHistory
from app.api.security import owner_of, principal
from app.api.uploads import IMAGE_MAX_BYTES, read_capped
from app.runner.jobs import Jobs
from app.storage import Storage
from app.usecases import jobs as work
from app.usecases import messages
from models.errors import InvalidInput

FORM_FIELDS = ("text", "voice_profile", "voice", "bgm_type", "bgm", "emotion", "size",
               "subtitles", "language", "background", "bgm_volume", "seed")

Submit = Callable[[bytes, dict[str, Any], str | None], dict[str, Any]]
"""``messages.submit_message`` over the app's services: (photo, fields, owner) -> answer."""


def multipart_handler(submit: Submit) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The one-click message's multipart body (``POST /api/video/generate``)."""

    async def handle(request: Request) -> JSONResponse:
        form = await request.form(max_files=2, max_fields=40)
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Send the photo as the multipart file field 'image'.",
                               code="IMAGE_MISSING",
                               message_ja="写真をファイル項目 'image' で送ってください。",
                               details={"field": "image"})
        data = await read_capped(upload, IMAGE_MAX_BYTES, "IMAGE_TOO_LARGE")
        fields = {k: form.get(k) for k in FORM_FIELDS if isinstance(form.get(k), str)}
        if not fields.get("text"):
            raise InvalidInput("The text is empty.", code="VOICE_TEXT_EMPTY",
                               message_ja="テキストが空です。", details={"field": "text"})
        answer = await run_in_threadpool(submit, data, fields, owner_of(request))
        return ok(answer, status_code=202)

    return handle


def create_router(storage: Storage, jobs: Jobs,
                  remove: Callable[[str], int]) -> APIRouter:
    """The message history; ``remove``: ``messages.delete_message`` over the services."""
    router = APIRouter(prefix="/api/messages", tags=["message"])

    @router.get("", response_model=Envelope[MessageHistory])
    def history(request: Request, limit: int = 50) -> JSONResponse:
        who = principal(request)
        listed = messages.history(jobs, limit=limit,
                                  owner=None if who.is_admin else who.user_id)
        return ok({"messages": [messages.message_view(storage, j) for j in listed]})

    @router.delete("/{job_id}", response_model=Envelope[MessageDeleted], responses=ERRORS)
    def delete(job_id: str, request: Request) -> JSONResponse:
        work.visible_job(jobs, job_id, principal(request).owns)
        removed = remove(job_id)
        return ok({"deleted": job_id, "files_removed": removed})

    return router
