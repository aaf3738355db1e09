"""Rendering a talking head from a portrait and a speech track: queued for
``POST /api/video/generate`` (JSON), made in the request for the Video tab; and the status
of a render or a message as ``/api/video/status`` shows it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.fetch import SafeFetcher, storage_key_of
from app.runner.jobs import Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage
from models.base import Speech
from models.chain import FallbackChain
from models.errors import InvalidInput, NotFound
from models.registry import REMOTE_ENGINES
from pipelines.media import LIMITS, decode_audio, decode_image, encode_png
from pipelines.sizes import BY_NAME, DEFAULT, SIZES
from pipelines.video.render import RenderOptions, estimate_seconds, render_talking_head

KIND = "video.render"
SIZE_NAMES: tuple[str, ...] = tuple(BY_NAME)
DEFAULT_SIZE = DEFAULT.name
SIZE_ASPECTS: tuple[tuple[str, str], ...] = tuple((s.name, s.aspect) for s in SIZES)
"""(size name, aspect) of every output size, in the order the tabs offer them."""
TEXT_MAX_CHARS = LIMITS.text_max_chars


def fetcher_for(storage: Storage, settings: Settings,
                fetcher: SafeFetcher | None = None) -> SafeFetcher:
    """``fetcher`` (a test's stand-in) or one over the settings' allow-list."""
    if fetcher is None:
        fetcher = SafeFetcher(storage, allowed_hosts=settings.fetch_allowed_hosts,
                              public_url=settings.public_url,
                              timeout=min(settings.request_timeout, 60.0))
    return fetcher


def store_inputs(storage: Storage, fetcher: SafeFetcher, public_url: str | None,
                 image_url: str, audio_url: str) -> dict[str, Any]:
    """Fetch and validate both inputs; keep them in storage; return the job's params."""
    image = fetcher.fetch(image_url, max_bytes=LIMITS.image_max_bytes)
    picture = decode_image(image.data, filename=image.filename)
    audio = fetcher.fetch(audio_url, max_bytes=LIMITS.audio_max_bytes)
    track = decode_audio(audio.data, area="VIDEO", filename=audio.filename)
    if track.duration < 0.2:
        raise InvalidInput("The audio is too short.", code="VIDEO_AUDIO_TOO_SHORT",
                           message_ja="音声が短すぎます。")
    image_key = storage_key_of(image_url, public_url)
    if image.source != "storage" or image_key is None:
        # Store the decoded, upright sRGB picture: what the render will see.
        image_key = storage.put(f"inputs/images/{uuid.uuid4().hex}.png", encode_png(picture))
    audio_key = storage_key_of(audio_url, public_url)
    if audio.source != "storage" or audio_key is None:
        ext = (audio.filename or "a.wav").rsplit(".", 1)[-1].lower()
        ext = ext if ext in ("wav", "mp3", "flac", "ogg", "opus", "m4a") else "wav"
        audio_key = storage.put(f"inputs/audio/{uuid.uuid4().hex}.{ext}", audio.data)
    return {"image_key": image_key, "audio_key": audio_key, "duration": track.duration}


def render_options(options: dict[str, Any], engines: list[str]) -> RenderOptions:
    """The render's options, the pinned engine checked against the configured ``engines``."""
    render = RenderOptions.parse(options)
    engine = render.engine
    if engine is not None and engine not in engines:
        raise InvalidInput(f"Unknown or disabled engine {engine!r}.",
                           code="VIDEO_UNKNOWN_ENGINE",
                           message_ja=f"エンジン {engine!r} は使えません。",
                           details={"engines": engines})
    return render


def submit_render(queue: TaskQueue, inputs: dict[str, Any], render: RenderOptions, *,
                  text: str | None, driver_url: str | None, result_format: str,
                  owner: str | None) -> dict[str, Any]:
    """Queue the render of the stored ``inputs`` (:func:`store_inputs`)."""
    params = {
        "image_key": inputs["image_key"], "audio_key": inputs["audio_key"],
        **render.params(), "text": text, "driver_url": driver_url,
        "result_format": result_format,
    }
    job = queue.submit(KIND, params, owner=owner)
    return {"task_id": job.id, "status": job.status,
            "estimated_time": estimate_seconds(inputs["duration"], render.size,
                                               remote=render.engine in REMOTE_ENGINES),
            "status_url": f"/api/video/status/{job.id}", "did_talk_id": None}


@dataclass(frozen=True)
class Rendered:
    path: Path
    info: dict[str, Any]


def render_now(chain: FallbackChain[Any], portrait: Any, audio: bytes, audio_name: str, *,
               options: dict[str, Any], text: str | None,
               progress: Callable[[float, str], None]) -> Rendered:
    """Render in the request (the Video tab): the MP4 lands in a scratch folder."""
    speech = decode_audio(audio, area="VIDEO", filename=audio_name)
    out = Path(tempfile.gettempdir()) / "studio-video" / f"{uuid.uuid4().hex}.mp4"
    path, info = render_talking_head(chain, portrait, Speech(speech), output=out,
                                     render=RenderOptions.parse(options), subtitles=text,
                                     progress=progress)
    return Rendered(path, info)


def status_view(storage: Storage, jobs: Jobs, task_id: str,
                owns: Callable[[str | None], bool] = lambda owner: True) -> dict[str, Any]:
    """The render's status; someone else's task (``owns`` says no) reads as not found."""
    try:
        job = jobs.get(task_id)
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
        "video_url": storage.url(result["video_key"]) if result.get("video_key") else None,
        "duration": result.get("duration"), "processing_time": result.get("processing_time"),
        "backend": result.get("backend"), "fallback_used": result.get("fallback_used"),
        "fallback_method": result.get("fallback_method"),
        "did_talk_id": result.get("did_talk_id"), "size": result.get("size"),
    }
    if job.kind.startswith("message"):
        data.update(message_engines(result))
    for ext in ("srt", "vtt"):
        if result.get(f"{ext}_key"):
            data[f"{ext}_url"] = storage.url(result[f"{ext}_key"])
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
