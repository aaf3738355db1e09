"""Portrait + speech -> talking-head MP4 (+ SRT/VTT subtitles): plain functions.

``render_talking_head`` is what the Video tab, the ``video.render`` job and the one-click
message pipeline call. It runs the talking-head chain (Wav2Lip when its weights are present,
the built-in renderer, D-ID), writes subtitles beside the MP4, optionally burns them in, and
returns the path plus a report of which engine made it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.base import (
    Audio,
    ProgressFn,
    RenderRequest,
    Speech,
    TalkingHead,
    no_progress,
    sub_progress,
)
from models.chain import FallbackChain
from models.errors import InvalidInput
from pipelines.options import parse
from pipelines.sizes import DEFAULT, OutputSize
from pipelines.video import subtitles as subs

FPS = 25
PREVIEW_SIZE = (256, 256)
PREVIEW_SECONDS = 8.0
MIN_AUDIO_SECONDS = 0.2


class RenderOptions(BaseModel):
    """How to render: the Video tab, the render route and the ``video.render`` job build the
    same value (:meth:`parse` for a caller's values, :meth:`params` for the queue)."""

    model_config = ConfigDict(frozen=True)

    size: OutputSize = DEFAULT
    subtitles: bool = False  # burn the text in (the .srt/.vtt are written whenever it is given)
    engine: str | None = None  # pin one talking-head engine by name; else the chain's order
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    preview: bool = False  # a quick 256 px render of the first seconds

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: object) -> OutputSize:
        # VIDEO_INVALID_SIZE naming the allowed sizes
        return OutputSize.parse(value if isinstance(value, OutputSize) else str(value))

    @field_validator("engine", mode="before")
    @classmethod
    def _engine(cls, value: object) -> object:
        return None if value in (None, "") else value

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RenderOptions:
        """From a caller's values (other keys are ignored); empty means the default."""
        values = {k: v for k, v in raw.items() if k in cls.model_fields and v not in (None, "")}
        return parse(cls, values, code="VIDEO_INVALID_REQUEST")

    def params(self) -> dict[str, Any]:
        """As the queue stores it (JSON): the size by name."""
        return {**self.model_dump(exclude={"size"}), "size": self.size.name}


def check_speech(speech: Speech) -> Speech:
    audio = speech.audio
    if audio.duration < MIN_AUDIO_SECONDS:
        raise InvalidInput(f"The audio is too short ({audio.duration:.2f} s).",
                           code="VIDEO_AUDIO_TOO_SHORT",
                           message_ja="音声が短すぎます。", details={"duration": audio.duration})
    if float(np.max(np.abs(audio.samples))) < 1e-4:
        raise InvalidInput("The audio is silent: there is nothing to lip-sync.",
                           code="VIDEO_AUDIO_SILENT", message_ja="音声が無音です。")
    return speech


def clip_speech(speech: Speech, seconds: float) -> Speech:
    """The first ``seconds`` of ``speech`` (for previews)."""
    audio = speech.audio
    n = int(seconds * audio.sample_rate)
    if len(audio.samples) <= n:
        return speech
    return Speech(Audio(audio.samples[:n], audio.sample_rate),
                  tuple(s for s in speech.sentences if s.start < seconds),
                  tuple(p for p in speech.phonemes if p.start < seconds))


def render_talking_head(
    chain: FallbackChain[TalkingHead],
    portrait: Any,
    speech: Speech,
    *,
    output: Path,
    render: RenderOptions | None = None,
    subtitles: str | None = None,
    progress: ProgressFn = no_progress,
    engine_options: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Render ``portrait`` saying ``speech`` into ``output`` (MP4, H.264 + AAC).

    ``subtitles`` is the message text: when given, ``output`` gets ``.srt`` and ``.vtt``
    siblings timed to the speech, and ``render.subtitles`` draws them onto the frames.
    ``engine_options`` go to the engine as they are (D-ID's ``driver_url``...).
    Returns the MP4 path and a report: backend, fallback_used, fallback_method, attempts,
    duration, size, frames, subtitle paths, processing_time, plus engine info
    (``did_talk_id``).
    """
    started = time.perf_counter()
    render = render or RenderOptions()
    check_speech(speech)
    if render.preview:
        dims = PREVIEW_SIZE
        speech = clip_speech(speech, PREVIEW_SECONDS)
    else:
        dims = (render.size.width, render.size.height)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cues = subs.cues_for(subtitles, speech) if subtitles and subtitles.strip() else []
    burn = bool(render.subtitles and cues)
    with tempfile.TemporaryDirectory(prefix="studio-video-") as tmp:
        target = Path(tmp) / "raw.mp4" if burn else output
        request = RenderRequest(image=portrait, speech=speech, size=dims, fps=FPS,
                                seed=render.seed, output=target,
                                options=dict(engine_options or {}))
        render_progress = sub_progress(progress, 0.0, 0.85 if burn else 0.97)
        result = chain.run(lambda e: e.render(request, render_progress), only=render.engine)
        if burn:
            progress(0.87, "subtitles")
            subs.burn_in(Path(result.value), output, cues)
        elif Path(result.value) != output:
            shutil.move(str(result.value), output)
    report: dict[str, Any] = result.report()
    report.update(request.info)
    report.update({
        "duration": round(speech.audio.duration, 3),
        "size": f"{dims[0]}x{dims[1]}",
        "fps": FPS,
        "preview": render.preview,
    })
    if cues:
        srt, vtt = output.with_suffix(".srt"), output.with_suffix(".vtt")
        srt.write_text(subs.to_srt(cues), encoding="utf-8")
        vtt.write_text(subs.to_vtt(cues), encoding="utf-8")
        report["subtitles"] = {"srt": str(srt), "vtt": str(vtt), "cues": len(cues),
                               "burned_in": burn}
    report["processing_time"] = round(time.perf_counter() - started, 3)
    progress(1.0, "done")
    return output, report


def estimate_seconds(duration: float, size: OutputSize, remote: bool = False) -> float:
    """A rough render-time estimate for the API's ``estimated_time`` (built-in renderer
    speed measured on a 2-core CPU, plus set-up; a remote service such as D-ID is slower:
    upload, its own queue, download)."""
    pixels = size.cost
    if remote:
        return round(20.0 + duration * 3.0, 1)
    return round(4.0 + duration * 0.6 * max(pixels, 0.4), 1)
