"""Making and deleting messages: the use cases the REST routes and the UI share.

Both doors call these functions, so a message is checked, stored and queued the same way
whichever door it came through."""

from __future__ import annotations

from typing import Any

from app.runner.jobs import Job, Jobs
from app.services import Services
from app.storage import Storage, new_key
from app.usecases.voices import voice_kit
from models.errors import InvalidInput, NotFound
from pipelines.media import decode_image, encode_png
from pipelines.message.chain import KIND
from pipelines.message.request import MessageRequest


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
    request = request.model_copy(update={"image_key": image_key})
    job = services.queue.submit(KIND, request.params(), owner=owner)
    return {"task_id": job.id, "status": job.status, "status_url": f"/api/video/status/{job.id}",
            "estimated_time": estimate_message_seconds(request)}


def check_choices(services: Services, request: MessageRequest, owner: str | None) -> None:
    """The music and voice must exist (and be the caller's) when the job is queued (the mood
    is one of the presets: :class:`MessageRequest` checked it)."""
    from pipelines.sound.tracks import find_track, list_tracks

    visible = None if owner is None else (lambda who: who in (None, owner))
    if request.wants_music:
        try:
            find_track(request.bgm, services.storage, visible)
        except NotFound as exc:
            tracks = list_tracks(services.storage, visible)
            raise InvalidInput(
                exc.message, code="BGM_TRACK_NOT_FOUND", message_ja=exc.message_ja,
                details={"field": "bgm_type", "bgm_type": request.bgm,
                         "moods": sorted({t.mood for t in tracks}),
                         "tracks": [t.id for t in tracks], "none": "none"}) from None
    from pipelines.voice.engines import check_voice
    from pipelines.voice.ref import VoiceRef

    voice = VoiceRef.parse(request.voice)  # VOICE_UNKNOWN_VOICE: a malformed VOICEVOX style
    if voice is None:
        return
    kit = voice_kit(services)
    if voice.is_profile:
        profile = kit.store.get(voice.id)  # VOICE_PROFILE_NOT_FOUND
        if owner and profile.owner not in (None, owner):
            raise NotFound(f"No voice profile {voice.id!r}.", code="VOICE_PROFILE_NOT_FOUND",
                           message_ja=f"ボイスプロファイル {voice.id!r} が見つかりません。")
    else:
        check_voice(kit.tts, voice, request.language)  # VOICE_UNKNOWN_VOICE / _MISMATCH


def estimate_message_seconds(request: MessageRequest) -> float:
    """Rough wall time on a 2-core CPU: ~0.35 s of speech per character of Japanese."""
    chars = len(request.text)
    speech = chars * (0.15 if request.language == "ja" else 0.06) + 3.0
    return round(6.0 + speech * (0.6 + 0.55 * request.size.cost), 1)


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


def history(jobs: Jobs, *, limit: int, owner: str | None) -> list[Job]:
    """The newest messages (at most 200); ``owner`` None: everyone's (an admin)."""
    return jobs.list(kind=KIND, limit=min(max(limit, 1), 200), owner=owner)


def message_view(storage: Storage, job: Job) -> dict[str, Any]:
    """One message as the history lists it."""
    result = job.result or {}
    url = storage.url
    return {
        "task_id": job.id, "status": job.status, "progress": round(job.progress, 1),
        "text": job.params.get("text"), "created_at": job.created_at,
        "size": job.params.get("size"), "emotion": result.get("emotion"),
        "video_url": url(result["video_key"]) if result.get("video_key") else None,
        "thumbnail_url": url(result["portrait_key"]) if result.get("portrait_key") else None,
        "duration": result.get("duration"), "engines": result.get("engines"),
        "error": job.error,
    }


def resolve_id(jobs: Jobs, shown: str, owner: str | None) -> str:
    """The owner's message whose id starts with ``shown`` (a history caption shows the
    first characters); ``shown`` itself when none does."""
    return next((j.id for j in jobs.list(kind=KIND, owner=owner, limit=1000)
                 if shown and j.id.startswith(shown)), shown)
