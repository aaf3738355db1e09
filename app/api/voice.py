"""`/api/voice/*`: synthesize, voice profiles, built-in voices.

Thin: each route validates its request shape, calls the voice use cases
(:mod:`app.usecases.voices`) and wraps the answer in the envelope. Errors are StudioErrors raised below; the one handler maps them.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.api.envelope import ok
from app.api.schemas import (
    ERRORS,
    Envelope,
    Profile,
    ProfileAccepted,
    ProfileDeleted,
    ProfileList,
    TaskStatus,
    VoiceList,
)
from app.api.schemas import Speech as SpeechData
from app.api.security import owner_of, principal, visibility
from app.api.uploads import AUDIO_MAX_BYTES, read_capped
from app.api.voice_evolve import add_routes as add_evolve_routes
from app.usecases import voices
from pipelines.voice.options import VoiceOptions
from pipelines.voice.profiles import ProfileStore


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


async def _read_uploads(files: list[UploadFile]) -> list[tuple[bytes, str]]:
    out = []
    for index, upload in enumerate(files):
        name = upload.filename or f"clip {index + 1}"
        data = await read_capped(upload, AUDIO_MAX_BYTES, "VOICE_SAMPLE_TOO_LARGE",
                                 name=name, clip=index)
        out.append((data, name))
    return out


def create_router(voices_: voices.Voices) -> APIRouter:
    """The voice routes over the voice use cases (and the store they write to)."""
    router = APIRouter(prefix="/api/voice", tags=["voice"])

    def profile_store(request: Request) -> ProfileStore:
        """The voice profiles this caller may see (their own; all for an admin)."""
        return voices_.profiles(visibility(request))

    @router.post("/synthesize", response_model=Envelope[SpeechData], responses=ERRORS)
    def synthesize(body: SynthesizeRequest, request: Request) -> JSONResponse:
        started = time.perf_counter()
        speaker = body.options.speaker if body.options.speaker is not None else body.speaker
        choice = voices.choice_from_fields(body.voice_type, body.options.voice or body.voice,
                                           speaker, body.profile_id)
        speech, report = voices_.speak(body.text or "", choice, language=body.language,
                                       options=body.options, profiles=profile_store(request))
        payload = voices.speech_payload(voices_.storage, speech, report, body.output_format,
                                        body.return_base64)
        payload["processing_time"] = round(time.perf_counter() - started, 3)
        return ok(payload)

    @router.get("/voices", response_model=Envelope[VoiceList])
    def list_voices() -> JSONResponse:
        return ok(voices_.voices())

    @router.get("/profiles", response_model=Envelope[ProfileList])
    def list_profiles(request: Request) -> JSONResponse:
        profiles = [voices.profile_answer(p) for p in profile_store(request).list()]
        return ok({"profiles": profiles, "count": len(profiles)})

    @router.post("/profiles", status_code=202, response_model=Envelope[ProfileAccepted],
                 responses=ERRORS)
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
            lambda: voices_.submit_profile(clips, name=name, language=language,
                                           owner=owner_of(request)))
        return ok(answer, status_code=202)

    @router.get("/status/{task_id}", response_model=Envelope[TaskStatus], responses=ERRORS)
    def profile_status(task_id: str, request: Request) -> JSONResponse:
        return ok(voices_.status(task_id, principal(request).owns))

    @router.get("/profiles/{profile_id}", response_model=Envelope[Profile], responses=ERRORS)
    def get_profile(profile_id: str, request: Request) -> JSONResponse:
        return ok(voices.profile_answer(profile_store(request).get(profile_id)))

    @router.patch("/profiles/{profile_id}", response_model=Envelope[Profile], responses=ERRORS)
    def rename_profile(profile_id: str, body: RenameRequest, request: Request) -> JSONResponse:
        return ok(voices.profile_answer(profile_store(request).rename(profile_id, body.name)))

    @router.delete("/profiles/{profile_id}", response_model=Envelope[ProfileDeleted],
                   responses=ERRORS)
    def delete_profile(profile_id: str, request: Request) -> JSONResponse:
        profile_store(request).delete(profile_id)
        return ok({"deleted": True, "profile_id": profile_id, "id": profile_id})

    add_evolve_routes(router, voices_, profile_store)
    return router
