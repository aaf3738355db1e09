"""`/api/voice/*`: synthesize, voice profiles, built-in voices.

Thin: each route validates its request shape, calls the voice pipeline and wraps the
answer in the envelope. Errors are StudioErrors raised below; the one handler maps them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.api.envelope import ok
from app.api.security import owner_of, principal, visibility
from app.api.task_view import owned_task, progress_fields
from app.api.uploads import read_capped
from app.api.voice_evolve import add_routes as add_evolve_routes
from app.api.voice_evolve import evolution_status_view
from app.services import Services
from app.storage import new_key
from app.usecases.voices import submit_profile, voice_kit
from models.base import Speech
from models.errors import InvalidInput, NotFound
from pipelines.media import LIMITS, encode_audio
from pipelines.voice.evolve_jobs import KIND as EVOLVE_KIND
from pipelines.voice.jobs import KIND as PROFILE_KIND
from pipelines.voice.options import VoiceOptions
from pipelines.voice.profiles import ProfileStore, public_profile
from pipelines.voice.ref import VoiceRef
from pipelines.voice.reports import SynthesisReport
from pipelines.voice.speech import VoiceChoice, list_voices

INLINE_MAX_BYTES = 1_000_000
"""Audio up to this size (about 20 s of 24 kHz WAV) comes back inline as base64 unless the
request says ``return_base64: false``."""


def profile_store(services: Services, request: Request) -> ProfileStore:
    """The voice profiles this caller may see (their own; all for an admin)."""
    return voice_kit(services).store.scoped(visibility(request))


class SynthesizeOptions(VoiceOptions):
    """The body's ``options``: the speech options plus the voice, as the seed placed it."""

    voice: str | None = None
    speaker: int | str | None = None


class SynthesizeRequest(BaseModel):
    """The seed's request: ``text``, ``voice_type``, ``profile_id``, ``language``,
    ``options`` (speed, pitch, volume + intonation, pause, voice/speaker)."""

    model_config = ConfigDict(extra="ignore")

    text: str | None = None
    voice_type: str = "builtin"
    profile_id: str | None = None
    language: str = "ja"
    options: SynthesizeOptions = Field(default_factory=lambda: SynthesizeOptions())
    voice: str | None = None
    speaker: int | str | None = None
    output_format: str = Field("wav", validation_alias=AliasChoices("output_format", "format"))
    return_base64: bool | None = Field(
        None, validation_alias=AliasChoices("return_base64", "return_audio_data",
                                            "include_audio_data", "audio_data_base64"))


class RenameRequest(BaseModel):
    name: str


def speech_payload(services: Services, speech: Speech, report: SynthesisReport, fmt: str,
                   inline: bool | None) -> dict[str, Any]:
    """Store the audio under ``voices/{engine}/`` and describe it as the seed does."""
    if fmt not in ("wav", "mp3"):
        raise InvalidInput(f"Unsupported output format {fmt!r}.", code="VOICE_INVALID_FORMAT",
                           message_ja=f"出力形式 {fmt!r} には対応していません。",
                           details={"allowed": ["wav", "mp3"]})
    data = encode_audio(speech.audio, fmt)
    key = services.storage.put(new_key(f"voices/{report.engine}", fmt), data)
    payload: dict[str, Any] = {
        "audio_url": services.storage.url(key),
        "audio_key": key,
        "audio_format": fmt,
        "sample_rate": speech.audio.sample_rate,
        "duration": round(speech.audio.duration, 3),
        "size_bytes": len(data),
        "sentences": [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text}
                      for s in speech.sentences],
        **report.as_dict(),
    }
    if inline or (inline is None and len(data) <= INLINE_MAX_BYTES):
        payload["audio_data_base64"] = base64.b64encode(data).decode("ascii")
    return payload


def profile_status_view(services: Services, task_id: str,
                        owns: Callable[[str | None], bool] = lambda owner: True
                        ) -> dict[str, Any]:
    """The profile job as the API shows it; someone else's reads as not found."""
    job = owned_task(services, task_id, (PROFILE_KIND, EVOLVE_KIND), owns, lambda: NotFound(
        f"No voice profile task {task_id!r}.", code="VOICE_TASK_NOT_FOUND",
        message_ja=f"ボイスプロファイルのタスク {task_id!r} が見つかりません。"))
    if job.kind == EVOLVE_KIND:  # the evolved-voice search shares this route
        return evolution_status_view(services, job)
    data = progress_fields(job)
    result = job.result or {}
    if job.status == "completed":
        data["profile_id"] = result.get("profile_id")
        data["profile"] = result.get("profile")
        data["processing_time"] = result.get("processing_time")
    if job.error:
        data["error"] = job.error
    return data


async def _read_uploads(files: list[UploadFile]) -> list[tuple[bytes, str]]:
    out = []
    for index, upload in enumerate(files):
        name = upload.filename or f"clip {index + 1}"
        data = await read_capped(upload, LIMITS.audio_max_bytes, "VOICE_SAMPLE_TOO_LARGE",
                                 name=name, clip=index)
        out.append((data, name))
    return out


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/voice", tags=["voice"])

    @router.post("/synthesize")
    def synthesize(body: SynthesizeRequest, request: Request) -> JSONResponse:
        started = time.perf_counter()
        kit = voice_kit(services)
        voice = body.options.voice or body.voice
        speaker = body.options.speaker if body.options.speaker is not None else body.speaker
        if speaker is not None and not voice:
            voice = str(VoiceRef.voicevox(speaker))
        choice = VoiceChoice.from_fields(body.voice_type, voice, body.profile_id)
        speech, report = kit.synthesize(body.text or "", choice=choice, language=body.language,
                                        options=body.options,
                                        profiles=profile_store(services, request))
        payload = speech_payload(services, speech, report, body.output_format,
                                 body.return_base64)
        payload["processing_time"] = round(time.perf_counter() - started, 3)
        return ok(payload)

    @router.get("/voices")
    def voices() -> JSONResponse:
        engines = list_voices(voice_kit(services).tts)
        flat = [{**v, "available": e["available"]} for e in engines for v in e["voices"]]
        return ok({"voices": flat, "engines": [{k: e[k] for k in ("engine", "available", "reason")}
                                               for e in engines]})

    @router.get("/profiles")
    def list_profiles(request: Request) -> JSONResponse:
        profiles = [public_profile(p) for p in profile_store(services, request).list()]
        return ok({"profiles": profiles, "count": len(profiles)})

    @router.post("/profiles", status_code=202)
    async def create_profile(
        request: Request,
        name: str = Form(""),
        language: str = Form("ja"),
        audio_samples: list[UploadFile] | None = File(None),
    ) -> JSONResponse:
        """Queue a ``voice.profile`` job (202); ``status_url`` follows it step by step and
        has the profile when it is done. Name, language and clip count are checked now."""
        clips = await _read_uploads(audio_samples or [])
        answer = await run_in_threadpool(  # decoding the clips takes a moment
            lambda: submit_profile(services, clips, name=name, language=language,
                                   owner=owner_of(request)))
        return ok(answer, status_code=202)

    @router.get("/status/{task_id}")
    def profile_status(task_id: str, request: Request) -> JSONResponse:
        return ok(profile_status_view(services, task_id, principal(request).owns))

    @router.get("/profiles/{profile_id}")
    def get_profile(profile_id: str, request: Request) -> JSONResponse:
        return ok(public_profile(profile_store(services, request).get(profile_id)))

    @router.patch("/profiles/{profile_id}")
    def rename_profile(profile_id: str, body: RenameRequest, request: Request) -> JSONResponse:
        return ok(public_profile(profile_store(services, request).rename(profile_id, body.name)))

    @router.delete("/profiles/{profile_id}")
    def delete_profile(profile_id: str, request: Request) -> JSONResponse:
        profile_store(services, request).delete(profile_id)
        return ok({"deleted": True, "profile_id": profile_id, "id": profile_id})

    add_evolve_routes(router, services, lambda request: profile_store(services, request))
    return router
