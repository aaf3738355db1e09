"""The queued ``video.render`` job: storage keys in, an MP4 (+ subtitles) key out."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from models.base import Speech
from pipelines.media import decode_audio, decode_image
from pipelines.tasks import JobContext, JobKind
from pipelines.video.render import RenderOptions, render_talking_head

STEPS = ["prepare", "render", "subtitles", "store"]


def render_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """params: image_key, audio_key, size, subtitles (bool), text, engine, seed,
    driver_url, result_format, preview."""
    ctx.progress(0.0, "prepare")
    image = decode_image(ctx.storage.get(params["image_key"]))
    audio = decode_audio(ctx.storage.get(params["audio_key"]), area="VIDEO")
    render = RenderOptions.parse(params)
    engine_options = {k: params[k] for k in ("driver_url", "result_format", "stitch")
                      if params.get(k)}
    text = params.get("text") or None
    ctx.step_done("prepare")

    def progress(fraction: float, step: str) -> None:
        ctx.progress(0.02 + 0.9 * fraction, "subtitles" if step == "subtitles" else "render")

    with tempfile.TemporaryDirectory(prefix="studio-job-") as tmp:
        out = Path(tmp) / "video.mp4"
        path, report = render_talking_head(
            ctx.chain("talking_head"), image, Speech(audio), output=out, render=render,
            subtitles=text, progress=progress, engine_options=engine_options)
        ctx.step_done("render")
        ctx.step_done("subtitles")
        ctx.progress(0.95, "store")
        video_key = ctx.new_key("videos/final", "mp4")
        ctx.storage.put(video_key, path.read_bytes())
        result: dict[str, Any] = {"video_key": video_key}
        stem = video_key.rsplit(".", 1)[0]
        if "subtitles" in report:
            for ext in ("srt", "vtt"):
                key = f"{stem}.{ext}"
                ctx.storage.put(key, Path(report["subtitles"][ext]).read_bytes())
                result[f"{ext}_key"] = key
            report["subtitles"] = {k: v for k, v in report["subtitles"].items()
                                   if k not in ("srt", "vtt")}
    ctx.step_done("store")
    result.update(report)
    return result


JOB = JobKind("video.render", STEPS, handler=render_job)
