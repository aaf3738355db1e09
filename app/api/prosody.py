"""`/api/prosody/*`: reshape a recording's pitch, pace, energy, intonation and pauses.

``POST /api/prosody/adjust`` (multipart ``audio`` or ``audio_key``, ``params`` JSON and/or
plain form fields) -> ``output_url``, ``duration``, ``original_duration``, ``changes_applied``.
``GET /api/prosody/presets`` -> the emotion preset table and the parameter ranges.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.audio_upload import audio_from_form, params_from_form
from app.api.envelope import ok
from app.services import Services
from app.storage import new_key
from models.errors import InvalidInput
from pipelines.media import LIMITS, decode_audio, encode_audio
from pipelines.sound import prosody

OUTPUT_FORMATS = ("wav", "mp3", "m4a")
METHODS = {"pitch_tempo": "Rubber Band (pedalboard), formants preserved",
           "intonation": "Praat PSOLA (parselmouth)",
           "pauses": "silence detection + crossfaded loop/cut",
           "energy": "gain + true-peak limiter (-1 dBTP)"}


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/prosody", tags=["prosody"])

    @router.post("/adjust", summary="Adjust pitch, tempo, energy, intonation and pauses")
    async def adjust_audio(request: Request) -> JSONResponse:
        form = await request.form()
        data, filename = await audio_from_form(form, services, file_field="audio",
                                               key_field="audio_key", area="PROSODY",
                                               max_bytes=LIMITS.audio_max_bytes)
        raw = params_from_form(form, area="PROSODY", skip=("audio", "audio_key",
                                                           "output_format"))
        params = prosody.ProsodyParams.from_mapping(raw)
        fmt = str(form.get("output_format") or "wav").lower()
        if fmt not in OUTPUT_FORMATS:
            raise InvalidInput(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}.",
                               code="PROSODY_INVALID_PARAMS",
                               message_ja=f"output_format は {', '.join(OUTPUT_FORMATS)} のいずれかです。",
                               details={"field": "output_format", "allowed": list(OUTPUT_FORMATS)})
        started = time.perf_counter()
        audio = await run_in_threadpool(decode_audio, data, area="PROSODY", filename=filename)
        result, report = await run_in_threadpool(prosody.adjust, audio, params)
        encoded = await run_in_threadpool(encode_audio, result, fmt)
        key = services.storage.put(new_key("prosody", fmt), encoded)
        return ok({
            "output_url": services.storage.url(key),
            "output_key": key,
            "format": fmt,
            "duration": report.duration,
            "original_duration": report.original_duration,
            "emotion": report.emotion,
            "changes_applied": report.changes,
            "parameters": report.applied,
            "notes": report.notes,
            "ignored_params": list(report.ignored),
            "method": METHODS,
            "processing_time": round(time.perf_counter() - started, 3),
        })

    @router.get("/presets", summary="Emotion presets and parameter ranges")
    def presets() -> JSONResponse:
        return ok({"presets": prosody.presets_table(),
                   "ranges": {k: {"min": lo, "max": hi} for k, (lo, hi) in prosody.RANGES.items()},
                   "emotions": list(prosody.EMOTIONS)})

    return router
