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
from pathlib import Path
from typing import Any

import numpy as np

from models.base import (
    Audio,
    FallbackChain,
    ProgressFn,
    RenderRequest,
    Speech,
    TalkingHead,
    no_progress,
    sub_progress,
)
from models.errors import InvalidInput
from pipelines import subtitles as subs
from pipelines.sizes import DEFAULT, OutputSize

FPS = 25
PREVIEW_SIZE = (256, 256)
PREVIEW_SECONDS = 8.0
MIN_AUDIO_SECONDS = 0.2


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
    size: OutputSize | str = DEFAULT,
    output: Path,
    subtitles: str | None = None,
    burn_subtitles: bool = False,
    progress: ProgressFn = no_progress,
    seed: int = 0,
    engine: str | None = None,
    options: dict[str, Any] | None = None,
    preview: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Render ``portrait`` saying ``speech`` into ``output`` (MP4, H.264 + AAC).

    ``subtitles`` is the message text: when given, ``output`` gets ``.srt`` and ``.vtt``
    siblings timed to the speech, and ``burn_subtitles`` draws them onto the frames.
    ``engine`` pins one talking-head engine by name; otherwise the chain's order applies.
    ``preview`` renders a quick 256 px version of the first seconds.
    Returns the MP4 path and a report: backend, fallback_used, fallback_method, attempts,
    duration, size, frames, subtitle paths, processing_time, plus engine info
    (``did_talk_id``).
    """
    started = time.perf_counter()
    check_speech(speech)
    if preview:
        dims = PREVIEW_SIZE
    else:
        frame = OutputSize.parse(size)
        dims = (frame.width, frame.height)
    if preview:
        speech = clip_speech(speech, PREVIEW_SECONDS)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cues = subs.cues_for(subtitles, speech) if subtitles and subtitles.strip() else []
    burn = bool(burn_subtitles and cues)
    with tempfile.TemporaryDirectory(prefix="studio-video-") as tmp:
        target = Path(tmp) / "raw.mp4" if burn else output
        request = RenderRequest(image=portrait, speech=speech, size=dims, fps=FPS, seed=seed,
                                output=target, options=dict(options or {}))
        render_progress = sub_progress(progress, 0.0, 0.85 if burn else 0.97)
        result = chain.run(lambda e: e.render(request, render_progress), only=engine)
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
        "preview": preview,
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


def estimate_seconds(duration: float, size: OutputSize, engine: str | None = None) -> float:
    """A rough render-time estimate for the API's ``estimated_time`` (built-in renderer
    speed measured on a 2-core CPU, plus set-up; D-ID is slower)."""
    pixels = size.cost
    if engine == "did":
        return round(20.0 + duration * 3.0, 1)
    return round(4.0 + duration * 0.6 * max(pixels, 0.4), 1)
