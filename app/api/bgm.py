"""`/api/bgm/*`: the music catalogue and the voice-over-music mix.

``GET /api/bgm/tracks`` lists built-in and uploaded tracks (with a preview URL each);
``GET /api/bgm/tracks/{id}/audio`` serves one; ``POST /api/bgm/tracks`` uploads a track
(mp3, wav, ogg, m4a, flac; 10 MB); ``POST /api/bgm/mix`` (multipart ``voice_audio`` or
``voice_key``, ``bgm_type`` = track id or mood, or a one-off ``bgm_audio`` file, plus mixing
options) -> ``output_url``, ``format``, ``bitrate``, ``duration``, ``mixing_details``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.audio_upload import audio_from_form, params_from_form, read_upload
from app.api.envelope import ok
from app.api.security import owner_of, visibility
from app.services import Services
from app.storage import new_key
from models.errors import InvalidInput
from pipelines.media import LIMITS, decode_audio
from pipelines.sound import music as bgm
from pipelines.sound import tracks as bgm_catalog

MEDIA_TYPES = {"opus": "audio/ogg", "ogg": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav",
               "m4a": "audio/mp4", "flac": "audio/flac"}
MIX_FIELDS = ("voice_audio", "voice_key", "bgm_type", "bgm_audio")


def _track_row(track: bgm_catalog.Track) -> dict[str, Any]:
    return {**track.public(), "preview_url": f"/api/bgm/tracks/{track.id}/audio"}


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/bgm", tags=["bgm"])
    store = services.storage

    @router.get("/tracks", summary="Built-in and uploaded background tracks")
    def tracks(request: Request) -> JSONResponse:
        return ok({"tracks": [_track_row(t) for t in
                              bgm_catalog.list_tracks(store, visibility(request))],
                   "moods": list(bgm_catalog.MOODS)})

    @router.get("/tracks/{track_id}/audio", summary="One track's audio (preview)")
    def track_audio(track_id: str, request: Request) -> Response:
        track = next((t for t in bgm_catalog.list_tracks(store, visibility(request))
                      if t.id == track_id), None)
        if track is None:
            raise bgm_catalog.not_found(track_id)
        ext = track.location.rsplit(".", 1)[-1].lower()
        return Response(bgm_catalog.track_bytes(track, store),
                        media_type=MEDIA_TYPES.get(ext, "application/octet-stream"),
                        headers={"Cache-Control": "public, max-age=3600" if track.builtin
                                 else "private, max-age=3600"})

    @router.post("/tracks", summary="Upload a background track", status_code=201)
    async def upload_track(request: Request) -> JSONResponse:
        form = await request.form()
        upload = next((form.get(n) for n in ("file", "audio", "track", "bgm_audio")
                       if isinstance(form.get(n), UploadFile)), None)
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Send the music as a multipart file named 'file'.",
                               code="BGM_AUDIO_INVALID",
                               message_ja="音楽ファイルを 'file' で送ってください。",
                               details={"reason": "missing", "field": "file"})
        data = await read_upload(upload, LIMITS.bgm_max_bytes, area="BGM")
        title, mood = form.get("title"), form.get("mood")
        track = await run_in_threadpool(
            bgm_catalog.save_upload, data, upload.filename, store,
            title=title if isinstance(title, str) else None,
            mood=mood if isinstance(mood, str) else None, owner=owner_of(request))
        return ok({"track": _track_row(track)}, status_code=201)

    @router.post("/mix", summary="Mix a voice over background music")
    async def mix(request: Request) -> JSONResponse:
        form = await request.form()
        data, filename = await audio_from_form(form, services, file_field="voice_audio",
                                               key_field="voice_key", area="BGM",
                                               max_bytes=LIMITS.audio_max_bytes)
        options = bgm.MixOptions.from_mapping(
            params_from_form(form, area="BGM", skip=MIX_FIELDS))
        music_upload = form.get("bgm_audio")
        music, music_name = None, None
        if isinstance(music_upload, UploadFile):
            music_name = music_upload.filename
            music_bytes = await read_upload(music_upload, LIMITS.bgm_max_bytes, area="BGM")
            music = await run_in_threadpool(decode_audio, music_bytes, area="BGM",
                                            filename=music_upload.filename,
                                            target_rate=bgm_catalog.MIX_RATE)
        bgm_type = form.get("bgm_type")
        bgm_type = bgm_type.strip() if isinstance(bgm_type, str) and bgm_type.strip() else "happy"
        if music is None and bgm_type.lower() != "none":
            # BGM_TRACK_NOT_FOUND (also for someone else's upload) before decoding the voice
            bgm_catalog.find_track(bgm_type, store, visibility(request))
        started = time.perf_counter()
        voice = await run_in_threadpool(decode_audio, data, area="BGM", filename=filename)
        encoded, report, track = await run_in_threadpool(
            bgm.mix_to_file, voice, None if music is not None else bgm_type, options, store,
            music=music, visible=visibility(request))
        key = store.put(new_key("bgm/mixes", options.output_format), encoded)  # aged out
        output = report.details["output"]
        return ok({
            "output_url": store.url(key),
            "output_key": key,
            "format": options.output_format,
            "bitrate": output["bitrate"],
            "duration": report.details["duration"],
            "track": _track_row(track) if track else (
                {"id": "upload", "title": music_name} if music is not None else None),
            "mixing_details": report.details,
            "processing_time": round(time.perf_counter() - started, 3),
        })

    return router
