"""The one-click message over REST and its history.

``POST /api/video/generate`` with a multipart body lands here (the JSON body is the plain
render path in ``app/api/video.py``): ``image``, ``text``, ``voice_profile`` (a profile id or a
built-in voice), ``bgm_type``, and optionally ``emotion``, ``size``, ``subtitles``,
``language``, ``background``, ``bgm_volume``. The answer is 202 with a ``task_id`` to poll at
``GET /api/video/status/{task_id}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from app.api.envelope import ok
from app.api.jobs import visible_job
from app.api.security import owner_of, principal
from app.api.uploads import read_capped
from app.services import Services
from app.usecases.messages import delete_message, submit_message
from models.errors import InvalidInput
from pipelines.media import LIMITS
from pipelines.message.chain import KIND

FORM_FIELDS = ("text", "voice_profile", "voice", "bgm_type", "bgm", "emotion", "size",
               "subtitles", "language", "background", "bgm_volume", "seed")


async def handle_multipart(services: Services, request: Request) -> JSONResponse:
    form = await request.form(max_files=2, max_fields=40)
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("Send the photo as the multipart file field 'image'.",
                           code="IMAGE_MISSING", message_ja="写真をファイル項目 'image' で送ってください。",
                           details={"field": "image"})
    data = await read_capped(upload, LIMITS.image_max_bytes, "IMAGE_TOO_LARGE")
    fields = {k: form.get(k) for k in FORM_FIELDS if isinstance(form.get(k), str)}
    if not fields.get("text"):
        raise InvalidInput("The text is empty.", code="VOICE_TEXT_EMPTY",
                           message_ja="テキストが空です。", details={"field": "text"})
    answer = await run_in_threadpool(submit_message, services, data, fields, owner_of(request))
    return ok(answer, status_code=202)


def message_view(services: Services, job: Any) -> dict[str, Any]:
    result = job.result or {}
    url = services.storage.url
    return {
        "task_id": job.id, "status": job.status, "progress": round(job.progress, 1),
        "text": job.params.get("text"), "created_at": job.created_at,
        "size": job.params.get("size"), "emotion": result.get("emotion"),
        "video_url": url(result["video_key"]) if result.get("video_key") else None,
        "thumbnail_url": url(result["portrait_key"]) if result.get("portrait_key") else None,
        "duration": result.get("duration"), "engines": result.get("engines"),
        "error": job.error,
    }


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/messages", tags=["message"])

    @router.get("")
    def history(request: Request, limit: int = 50) -> JSONResponse:
        who = principal(request)
        jobs = services.jobs.list(kind=KIND, limit=min(max(limit, 1), 200),
                                  owner=None if who.is_admin else who.user_id)
        return ok({"messages": [message_view(services, j) for j in jobs]})

    @router.delete("/{job_id}")
    def delete(job_id: str, request: Request) -> JSONResponse:
        visible_job(services, request, job_id)
        removed = delete_message(services, job_id)
        return ok({"deleted": job_id, "files_removed": removed})

    return router
