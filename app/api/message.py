"""The one-click message over REST (seed section 9.2) and its history.

``POST /api/video/generate`` with a multipart body lands here (the JSON body is the plain
render path in ``app/api/video.py``): ``image``, ``text``, ``voice_profile`` (a profile id or a
built-in voice), ``bgm_type``, and optionally ``emotion``, ``size``, ``subtitles``,
``language``, ``background``, ``bgm_volume``. The answer is 202 with a ``task_id`` to poll at
``GET /api/video/status/{task_id}``.
"""

from __future__ import annotations

import dataclasses
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
from app.storage import new_key
from models.errors import InvalidInput, NotFound
from pipelines.media import LIMITS, decode_image, encode_png
from pipelines.message import KIND, NO_MUSIC, MessageRequest

FORM_FIELDS = ("text", "voice_profile", "voice", "bgm_type", "bgm", "emotion", "size",
               "subtitles", "language", "background", "bgm_volume", "seed")


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def submit_message(services: Services, image_bytes: bytes, fields: dict[str, Any],
                   owner: str | None) -> dict[str, Any]:
    """Validate everything, store the photo, queue the job: the one path for REST and UI.

    Every choice is checked here, before any work: a bad mood or voice found by a stage
    would cost a synthesized voice and ~10 s before the job failed."""
    image = decode_image(image_bytes)  # fails fast with IMAGE_* before anything is queued
    voice = fields.get("voice_profile") or fields.get("voice") or None
    request = MessageRequest.validated(
        image_key="", text=fields.get("text"), voice=voice,
        language=fields.get("language"), emotion=fields.get("emotion") or "auto",
        bgm=fields.get("bgm_type") if fields.get("bgm_type") is not None else fields.get("bgm"),
        bgm_volume=fields.get("bgm_volume") if fields.get("bgm_volume") not in (None, "") else 0.25,
        size=fields.get("size"), subtitles=_truthy(fields.get("subtitles", False)),
        background=fields.get("background"), seed=fields.get("seed") or 0,
    )
    check_choices(services, request, owner)
    image_key = services.storage.put(new_key("inputs/images", "png"), encode_png(image))
    request = dataclasses.replace(request, image_key=image_key)
    job = services.queue.submit(KIND, request.params(), owner=owner)
    return {"task_id": job.id, "status": job.status, "status_url": f"/api/video/status/{job.id}",
            "estimated_time": estimate_message_seconds(request)}


def check_choices(services: Services, request: MessageRequest, owner: str | None) -> None:
    """The mood, music and voice must exist (and be the caller's) when the job is queued."""
    from pipelines.bgm import find_track, list_tracks
    from pipelines.prosody import EMOTIONS

    if request.emotion not in EMOTIONS:
        raise InvalidInput(f"Unknown mood {request.emotion!r}; use one of {', '.join(EMOTIONS)}.",
                           code="PROSODY_INVALID_PARAMS",
                           message_ja=f"雰囲気 {request.emotion!r} は使えません"
                                      f"（{', '.join(EMOTIONS)}）。",
                           details={"field": "emotion", "allowed": list(EMOTIONS)})
    visible = None if owner is None else (lambda who: who in (None, owner))
    if request.bgm.strip().lower() not in NO_MUSIC:
        try:
            find_track(request.bgm, services.storage, visible)
        except NotFound as exc:
            tracks = list_tracks(services.storage, visible)
            raise InvalidInput(
                exc.message, code="BGM_TRACK_NOT_FOUND", message_ja=exc.message_ja,
                details={"field": "bgm_type", "bgm_type": request.bgm,
                         "moods": sorted({t.mood for t in tracks}),
                         "tracks": [t.id for t in tracks], "none": "none"}) from None
    voice = request.voice
    if not voice:
        return
    from app.api.voice import voice_kit
    from pipelines.voice import language_chain

    kit = voice_kit(services)
    if voice.startswith("openvoice_"):
        profile = kit.store.get(voice)  # VOICE_PROFILE_NOT_FOUND
        if owner and profile.get("owner") not in (None, owner):
            raise NotFound(f"No voice profile {voice!r}.", code="VOICE_PROFILE_NOT_FOUND",
                           message_ja=f"ボイスプロファイル {voice!r} が見つかりません。")
    elif voice.startswith("voicevox:"):
        if not voice.removeprefix("voicevox:").isdigit() or \
                not any(e.name == "voicevox" for e in kit.tts):
            raise InvalidInput(f"Unknown voice {voice!r}.", code="VOICE_UNKNOWN_VOICE",
                               message_ja=f"声 {voice!r} がありません。",
                               details={"field": "voice", "voice": voice})
    else:
        language_chain(kit.tts, request.language, voice)  # VOICE_UNKNOWN_VOICE / _MISMATCH


def estimate_message_seconds(request: MessageRequest) -> float:
    """Rough wall time on a 2-core CPU: ~0.35 s of speech per character of Japanese."""
    chars = len(request.text)
    speech = chars * (0.15 if request.language == "ja" else 0.06) + 3.0
    pixels = {"512x512": 1.0, "720x1280": 3.5, "1280x720": 3.5}[request.size]
    return round(6.0 + speech * (0.6 + 0.55 * pixels), 1)


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


def delete_message(services: Services, job_id: str) -> int:
    """Delete a message and every artifact it made (its inputs too)."""
    job = services.jobs.get(job_id)
    keys = {v for v in (job.result or {}).values() if isinstance(v, str) and "/" in v}
    keys.add(job.params.get("image_key", ""))
    for record in services.queue.stages(job_id).values():
        keys.update(v for v in (record.get("output") or {}).values()
                    if isinstance(v, str) and v.endswith((".png", ".wav", ".m4a", ".mp3",
                                                          ".mp4", ".srt", ".vtt")))
    if not job.final:
        services.queue.cancel(job_id)
    removed = sum(1 for key in keys if key and services.storage.delete(key))
    services.jobs.delete(job_id)
    return removed


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
