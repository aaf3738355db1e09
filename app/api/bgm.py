"""`/api/bgm/*`: the music catalogue and the voice-over-music mix.

``GET /api/bgm/tracks`` lists built-in and uploaded tracks (with a preview URL each);
``GET /api/bgm/tracks/{id}/audio`` serves one; ``POST /api/bgm/tracks`` uploads a track
(mp3, wav, ogg, m4a, flac; 10 MB); ``POST /api/bgm/mix`` (multipart ``voice_audio`` or
``voice_key``, ``bgm_type`` = track id or mood, or a one-off ``bgm_audio`` file, plus mixing
options) -> ``output_url``, ``format``, ``bitrate``, ``duration``, ``mixing_details``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.api.audio_upload import audio_from_form, params_from_form, read_upload
from app.api.envelope import ok
from app.api.schemas import ERRORS, Envelope, MixResult, TrackAdded, TrackList
from app.api.security import owner_of, visibility
from app.api.uploads import AUDIO_MAX_BYTES, BGM_MAX_BYTES
from app.storage import Storage
from app.usecases import music
from models.errors import InvalidInput

MIX_FIELDS = ("voice_audio", "voice_key", "bgm_type", "bgm_audio")


def create_router(store: Storage) -> APIRouter:
    router = APIRouter(prefix="/api/bgm", tags=["bgm"])

    @router.get("/tracks", summary="Built-in and uploaded background tracks",
                response_model=Envelope[TrackList])
    def tracks(request: Request) -> JSONResponse:
        return ok({"tracks": [music.track_row(t) for t in
                              music.list_tracks(store, visibility(request))],
                   "moods": list(music.MOODS)})

    @router.get("/tracks/{track_id}/audio", summary="One track's audio (preview)")
    def track_audio(track_id: str, request: Request) -> Response:
        track = music.track_audio(store, track_id, visibility(request))
        return Response(track.data, media_type=track.media_type,
                        headers={"Cache-Control": "public, max-age=3600" if track.builtin
                                 else "private, max-age=3600"})

    @router.post("/tracks", summary="Upload a background track", status_code=201,
                 response_model=Envelope[TrackAdded], responses=ERRORS)
    async def upload_track(request: Request) -> JSONResponse:
        form = await request.form()
        upload = next((form.get(n) for n in ("file", "audio", "track", "bgm_audio")
                       if isinstance(form.get(n), UploadFile)), None)
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Send the music as a multipart file named 'file'.",
                               code="BGM_AUDIO_INVALID",
                               message_ja="音楽ファイルを 'file' で送ってください。",
                               details={"reason": "missing", "field": "file"})
        data = await read_upload(upload, BGM_MAX_BYTES, area="BGM")
        title, mood = form.get("title"), form.get("mood")
        track = await run_in_threadpool(
            music.add_track, store, data, upload.filename,
            title=title if isinstance(title, str) else None,
            mood=mood if isinstance(mood, str) else None, owner=owner_of(request))
        return ok({"track": music.track_row(track)}, status_code=201)

    @router.post("/mix", summary="Mix a voice over background music",
                 response_model=Envelope[MixResult], responses=ERRORS)
    async def mix(request: Request) -> JSONResponse:
        form = await request.form()
        data, filename = await audio_from_form(form, store, file_field="voice_audio",
                                               key_field="voice_key", area="BGM",
                                               max_bytes=AUDIO_MAX_BYTES)
        options = music.mix_options(params_from_form(form, area="BGM", skip=MIX_FIELDS))
        music_upload = form.get("bgm_audio")
        one_off, music_name = None, None
        if isinstance(music_upload, UploadFile):
            music_name = music_upload.filename
            music_bytes = await read_upload(music_upload, BGM_MAX_BYTES, area="BGM")
            one_off = await run_in_threadpool(music.decode_music, music_bytes,
                                              music_upload.filename)
        bgm_type = form.get("bgm_type")
        bgm_type = bgm_type.strip() if isinstance(bgm_type, str) and bgm_type.strip() else "happy"
        if one_off is None and bgm_type.lower() != "none":
            music.check_track(store, bgm_type, visibility(request))
        mixed = await run_in_threadpool(
            lambda: music.mix_voice(store, data, filename,
                                    None if one_off is not None else bgm_type, options,
                                    music_audio=one_off, visible=visibility(request)))
        return ok(music.mix_answer(store, mixed, uploaded_music=one_off is not None,
                                   music_name=music_name))

    return router
