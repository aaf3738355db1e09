"""``/api/video/*``: render a talking-head video from a portrait and an audio track.

``POST /api/video/generate`` branches on the body's content type: a JSON body
(``image_url``, ``audio_url``, ``options``) is this module's render path; a multipart body is
the one-click message path (photo + text + voice profile) in ``app/api/message.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.envelope import ok
from app.api.message import FORM_FIELDS
from app.api.schemas import ERRORS, Envelope, TaskStatus, VideoAccepted
from app.api.security import owner_of, principal
from app.config import Settings
from app.fetch import SafeFetcher
from app.runner.jobs import Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage
from app.usecases import video
from models.errors import InvalidInput

MultipartHandler = Callable[[Request], Awaitable[JSONResponse]]


class VideoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver_url: str | None = Field(default=None, max_length=512)
    result_format: Literal["mp4"] = "mp4"
    size: str = Field(default=video.DEFAULT_SIZE,
                      description=f"one of {', '.join(video.SIZE_NAMES)}")
    subtitles: bool = False
    engine: str | None = Field(default=None, max_length=32,
                               description="pin one engine by name")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    preview: bool = False


class GenerateVideoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: str = Field(..., min_length=1, max_length=2048)
    audio_url: str = Field(..., min_length=1, max_length=2048)
    text: str | None = Field(default=None, max_length=video.TEXT_MAX_CHARS,
                             description="message text, for subtitles")
    options: VideoOptions = Field(default_factory=VideoOptions)


MESSAGE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "MessageForm", "required": ["image", "text"],
    "description": "The one-click message (photo + text -> video), see /api/messages.",
    "properties": {"image": {"type": "string", "format": "binary"},
                   **{name: {"type": "string"} for name in FORM_FIELDS}},
}


def _validation_error(exc: ValidationError) -> InvalidInput:
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
              for e in exc.errors()]
    return InvalidInput("The request body is invalid.", code="VIDEO_INVALID_REQUEST",
                        message_ja="リクエストの内容が不正です。", details={"fields": fields})


def create_router(storage: Storage, jobs: Jobs, queue: TaskQueue, settings: Settings,
                  fetcher: SafeFetcher | None, message: MultipartHandler) -> APIRouter:
    """The render routes; a multipart ``/generate`` is the one-click message (``message``)."""
    router = APIRouter(prefix="/api/video", tags=["video"])

    @router.post("/generate", status_code=202, response_model=Envelope[VideoAccepted],
                 responses=ERRORS, openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": GenerateVideoRequest.model_json_schema()},
        "multipart/form-data": {"schema": MESSAGE_FORM_SCHEMA}}}})
    async def generate(request: Request) -> JSONResponse:
        """Queue a render. JSON: image_url, audio_url (this studio's /files/... URLs, storage
        keys, or allow-listed https URLs), text, options {size, subtitles, engine,
        driver_url, result_format, seed, preview}."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            return await message(request)
        if content_type != "application/json":
            raise InvalidInput("Send a JSON body (or multipart for a message).",
                               code="VIDEO_UNSUPPORTED_MEDIA_TYPE",
                               message_ja="JSON（またはメッセージ用のマルチパート）で送ってください。",
                               details={"content_type": content_type})
        raw = await request.body()
        if len(raw) > 64 * 1024:
            raise InvalidInput("The request body is too large.", code="VIDEO_INVALID_REQUEST",
                               message_ja="リクエストが大きすぎます。")
        try:
            body = GenerateVideoRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        render = video.render_options(body.options.model_dump(),
                                      settings.backends("talking_head"))
        inputs = await run_in_threadpool(
            video.store_inputs, storage, video.fetcher_for(storage, settings, fetcher),
            settings.public_url, body.image_url, body.audio_url)
        return ok(video.submit_render(
            queue, inputs, render, text=body.text, driver_url=body.options.driver_url,
            result_format=body.options.result_format, owner=owner_of(request)),
            status_code=202)

    @router.get("/status/{task_id}", response_model=Envelope[TaskStatus], responses=ERRORS)
    def status(task_id: str, request: Request) -> JSONResponse:
        return ok(video.status_view(storage, jobs, task_id, principal(request).owns))

    return router
