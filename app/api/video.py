"""``/api/video/*``: render a talking-head video from a portrait and an audio track.

``POST /api/video/generate`` branches on the body's content type: a JSON body
(``image_url``, ``audio_url``, ``options``) is this module's render path; a multipart body is
the one-click message path (photo + text + voice profile) in ``app/api/message.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.envelope import ok
from app.api.message import FORM_FIELDS, handle_multipart
from app.api.security import owner_of, principal
from app.fetch import SafeFetcher, storage_key_of
from app.services import Services
from models.errors import InvalidInput, NotFound, StudioError
from models.registry import REMOTE_ENGINES
from pipelines.media import LIMITS, decode_audio, decode_image, encode_png
from pipelines.sizes import BY_NAME, DEFAULT
from pipelines.video.render import RenderOptions, estimate_seconds


class VideoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver_url: str | None = Field(default=None, max_length=512)
    result_format: Literal["mp4"] = "mp4"
    size: str = Field(default=DEFAULT.name, description=f"one of {', '.join(BY_NAME)}")
    subtitles: bool = False
    engine: str | None = Field(default=None, max_length=32,
                               description="pin one engine by name")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    preview: bool = False


class GenerateVideoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: str = Field(..., min_length=1, max_length=2048)
    audio_url: str = Field(..., min_length=1, max_length=2048)
    text: str | None = Field(default=None, max_length=LIMITS.text_max_chars,
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


def fetcher_for(services: Services) -> SafeFetcher:
    fetcher = services.fetcher
    if fetcher is None:
        settings = services.settings
        fetcher = SafeFetcher(services.storage, allowed_hosts=settings.fetch_allowed_hosts,
                              public_url=settings.public_url,
                              timeout=min(settings.request_timeout, 60.0))
    return fetcher


def store_inputs(services: Services, body: GenerateVideoRequest) -> dict[str, Any]:
    """Fetch and validate both inputs; keep them in storage; return the job's params."""
    fetcher = fetcher_for(services)
    image = fetcher.fetch(body.image_url, max_bytes=LIMITS.image_max_bytes)
    picture = decode_image(image.data, filename=image.filename)
    audio = fetcher.fetch(body.audio_url, max_bytes=LIMITS.audio_max_bytes)
    track = decode_audio(audio.data, area="VIDEO", filename=audio.filename)
    if track.duration < 0.2:
        raise InvalidInput("The audio is too short.", code="VIDEO_AUDIO_TOO_SHORT",
                           message_ja="音声が短すぎます。")
    image_key = storage_key_of(body.image_url, services.settings.public_url)
    if image.source != "storage" or image_key is None:
        # Store the decoded, upright sRGB picture: what the render will see.
        image_key = services.storage.put(f"inputs/images/{uuid.uuid4().hex}.png",
                                         encode_png(picture))
    audio_key = storage_key_of(body.audio_url, services.settings.public_url)
    if audio.source != "storage" or audio_key is None:
        ext = (audio.filename or "a.wav").rsplit(".", 1)[-1].lower()
        ext = ext if ext in ("wav", "mp3", "flac", "ogg", "opus", "m4a") else "wav"
        audio_key = services.storage.put(f"inputs/audio/{uuid.uuid4().hex}.{ext}", audio.data)
    return {"image_key": image_key, "audio_key": audio_key, "duration": track.duration}


def status_view(services: Services, task_id: str,
                owns: Callable[[str | None], bool] = lambda owner: True) -> dict[str, Any]:
    """The render's status; someone else's task (``owns`` says no) reads as not found."""
    try:
        job = services.jobs.get(task_id)
    except NotFound:
        job = None
    if job is None or not (job.kind.startswith("video.") or job.kind.startswith("message")) \
            or not owns(job.owner):
        raise NotFound(f"No video task {task_id!r}.", code="VIDEO_TASK_NOT_FOUND",
                       message_ja=f"動画タスク {task_id!r} が見つかりません。")
    result = job.result or {}
    data: dict[str, Any] = {
        "task_id": job.id, "status": job.status, "progress": round(job.progress, 1),
        "current_step": job.current_step, "steps_completed": job.steps_completed,
        "steps_remaining": job.steps_remaining,
        "video_url": services.storage.url(result["video_key"]) if result.get("video_key") else None,
        "duration": result.get("duration"), "processing_time": result.get("processing_time"),
        "backend": result.get("backend"), "fallback_used": result.get("fallback_used"),
        "fallback_method": result.get("fallback_method"),
        "did_talk_id": result.get("did_talk_id"), "size": result.get("size"),
    }
    if job.kind.startswith("message"):
        data.update(message_engines(result))
    for ext in ("srt", "vtt"):
        if result.get(f"{ext}_key"):
            data[f"{ext}_url"] = services.storage.url(result[f"{ext}_key"])
    if job.error:
        data["error"] = job.error
    return data


def message_engines(result: dict[str, Any]) -> dict[str, Any]:
    """A finished message's engines in the render's terms: ``backend`` is the video engine,
    ``fallback_used`` covers every stage, ``fallback_method`` names the first fallback taken
    (the video stage's first), and ``stages`` lists which engine made each stage."""
    stages = [{k: v for k, v in st.items() if k != "duration"}
              for st in result.get("stages") or []]
    methods = [st.get("fallback_method") for st in stages if st.get("fallback_method")]
    video = next((st for st in stages if st.get("stage") == "video"), {})
    return {"backend": video.get("backend") or (result.get("engines") or {}).get("video"),
            "fallback_used": bool(result.get("fallback_used")) if result else None,
            "fallback_method": video.get("fallback_method") or (methods[0] if methods else None),
            "engines": result.get("engines"), "stages": stages}


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/video", tags=["video"])

    @router.post("/generate", status_code=202, openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": GenerateVideoRequest.model_json_schema()},
        "multipart/form-data": {"schema": MESSAGE_FORM_SCHEMA}}}})
    async def generate(request: Request) -> JSONResponse:
        """Queue a render. JSON: image_url, audio_url (this studio's /files/... URLs, storage
        keys, or allow-listed https URLs), text, options {size, subtitles, engine,
        driver_url, result_format, seed, preview}."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            return await handle_multipart(services, request)
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
        render = RenderOptions.parse(body.options.model_dump())
        engine = render.engine
        if engine is not None and engine not in services.settings.backends("talking_head"):
            raise InvalidInput(f"Unknown or disabled engine {engine!r}.",
                               code="VIDEO_UNKNOWN_ENGINE",
                               message_ja=f"エンジン {engine!r} は使えません。",
                               details={"engines": services.settings.backends("talking_head")})
        inputs = await run_in_threadpool(store_inputs, services, body)
        params = {
            "image_key": inputs["image_key"], "audio_key": inputs["audio_key"],
            **render.params(), "text": body.text,
            "driver_url": body.options.driver_url, "result_format": body.options.result_format,
        }
        job = services.queue.submit("video.render", params, owner=owner_of(request))
        data = {"task_id": job.id, "status": job.status,
                "estimated_time": estimate_seconds(inputs["duration"], render.size,
                                                  remote=engine in REMOTE_ENGINES),
                "status_url": f"/api/video/status/{job.id}", "did_talk_id": None}
        return ok(data, status_code=202)

    @router.get("/status/{task_id}")
    def status(task_id: str, request: Request) -> JSONResponse:
        return ok(status_view(services, task_id, principal(request).owns))

    return router


__all__ = ["StudioError", "create_router"]
