"""`/api/prosody/*`: reshape a recording's pitch, pace, energy, intonation and pauses.

``POST /api/prosody/adjust`` (multipart ``audio`` or ``audio_key``, ``params`` JSON and/or
plain form fields) -> ``output_url``, ``duration``, ``original_duration``, ``changes_applied``.
``GET /api/prosody/presets`` -> the emotion preset table and the parameter ranges.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.audio_upload import audio_from_form, params_from_form
from app.api.envelope import ok
from app.api.schemas import ERRORS, Envelope, ProsodyPresets, ProsodyResult
from app.api.uploads import AUDIO_MAX_BYTES
from app.storage import Storage
from app.usecases import prosody


def create_router(storage: Storage) -> APIRouter:
    router = APIRouter(prefix="/api/prosody", tags=["prosody"])

    @router.post("/adjust", summary="Adjust pitch, tempo, energy, intonation and pauses",
                 response_model=Envelope[ProsodyResult], responses=ERRORS)
    async def adjust_audio(request: Request) -> JSONResponse:
        form = await request.form()
        data, filename = await audio_from_form(form, storage, file_field="audio",
                                               key_field="audio_key", area="PROSODY",
                                               max_bytes=AUDIO_MAX_BYTES)
        raw = params_from_form(form, area="PROSODY", skip=("audio", "audio_key",
                                                           "output_format"))
        params, fmt = prosody.settings(raw, str(form.get("output_format") or "wav"))
        done = await run_in_threadpool(prosody.adjust_recording, storage, data, filename,
                                       params, fmt)
        return ok(prosody.answer(storage, done))

    @router.get("/presets", summary="Emotion presets and parameter ranges",
                response_model=Envelope[ProsodyPresets])
    def presets() -> JSONResponse:
        return ok(prosody.presets())

    return router
