"""What each stage of the one-click message hands on, as typed values.

The queue stores a stage's output as JSON and gives it to the stages after it: ``as_dict``
and ``from_dict`` are used only at that edge; stages read typed fields. The keys are those
stored results already have, so a job queued before an upgrade resumes after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from models.base import Timing
from pipelines.media import stretched

TimingRows = list[list[Any]]  # [[start, end, text], ...]: how timings sit in JSON


def timing_rows(items: Sequence[Timing]) -> TimingRows:
    return [[round(t.start, 4), round(t.end, 4), t.text] for t in items]


def timings_of(rows: Sequence[Sequence[Any]], scale: float = 1.0, shift: float = 0.0
               ) -> tuple[Timing, ...]:
    """Timings from JSON rows, stretched by ``scale`` then moved by ``shift`` seconds."""
    return tuple(Timing(float(a) * scale + shift, float(b) * scale + shift, str(t))
                 for a, b, t in rows)


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def passed_over(capability: str, report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A chain's run as the job keeps it for people's notes: ``[{"capability", "used",
    "attempts"}]`` with the engines passed over on the way (nothing when none was)."""
    attempts = [dict(a) for a in (report or {}).get("attempts") or ()
                if a.get("outcome") != "used"]
    if not attempts:
        return []
    return [{"capability": capability, "used": (report or {}).get("backend"),
             "attempts": attempts}]


@dataclass(frozen=True)
class ImageOutput:
    """The framed portrait and how each image step was made."""

    portrait_key: str
    face_box: tuple[int, ...] = ()
    operations: tuple[dict[str, Any], ...] = ()  # the steps' reports, as the API shows them
    engines: dict[str, str | None] = field(default_factory=dict)  # step -> engine
    backend: str | None = None  # the cutout engine
    fallback_used: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"portrait_key": self.portrait_key, "face_box": list(self.face_box),
                "operations": list(self.operations), "engines": dict(self.engines),
                "backend": self.backend, "fallback_used": self.fallback_used}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageOutput:
        return cls(str(data["portrait_key"]), tuple(int(v) for v in data.get("face_box") or ()),
                   tuple(data.get("operations") or ()), dict(data.get("engines") or {}),
                   _optional_str(data.get("backend")), bool(data.get("fallback_used")))


@dataclass(frozen=True)
class VoiceOutput:
    """The synthesized (and converted) voice with its sentence and phoneme timings."""

    voice_key: str
    sentences: tuple[Timing, ...] = ()
    phonemes: tuple[Timing, ...] = ()
    duration: float = 0.0
    backend: str | None = None
    fallback_used: bool = False
    fallback_method: str | None = None
    voice: str | None = None
    method: str | None = None  # the conversion, when a profile's voice was matched
    engines: dict[str, str | None] = field(default_factory=dict)  # tts, conversion
    passed_over: tuple[dict[str, Any], ...] = ()  # see passed_over()

    def as_dict(self) -> dict[str, Any]:
        return {"voice_key": self.voice_key, "sentences": timing_rows(self.sentences),
                "phonemes": timing_rows(self.phonemes), "duration": round(self.duration, 3),
                "backend": self.backend, "fallback_used": self.fallback_used,
                "fallback_method": self.fallback_method, "voice": self.voice,
                "method": self.method, "engines": dict(self.engines),
                "passed_over": list(self.passed_over)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VoiceOutput:
        return cls(str(data["voice_key"]), timings_of(data.get("sentences") or ()),
                   timings_of(data.get("phonemes") or ()), float(data.get("duration") or 0.0),
                   _optional_str(data.get("backend")), bool(data.get("fallback_used")),
                   _optional_str(data.get("fallback_method")), _optional_str(data.get("voice")),
                   _optional_str(data.get("method")), dict(data.get("engines") or {}),
                   tuple(data.get("passed_over") or ()))


@dataclass(frozen=True)
class ProsodyOutput:
    """The voice reshaped for the message's mood."""

    prosody_key: str
    emotion: str
    changes: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    time_scale: float = 1.0  # reshaped length / synthesized length (timings stretch by it)
    backend: str = "rubberband+praat"
    # (synthesized s, reshaped s) knots: pauses change by whole amounts, so timings follow
    # this map when it is there (a uniform ``time_scale`` drifted by each pause's change)
    time_map: tuple[tuple[float, float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"prosody_key": self.prosody_key, "emotion": self.emotion,
                "changes": dict(self.changes), "duration": round(self.duration, 3),
                "time_scale": self.time_scale, "backend": self.backend,
                "time_map": [list(k) for k in self.time_map]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProsodyOutput:
        return cls(str(data["prosody_key"]), str(data["emotion"]), dict(data.get("changes") or {}),
                   float(data.get("duration") or 0.0), float(data.get("time_scale", 1.0)),
                   str(data.get("backend") or "rubberband+praat"),
                   tuple((float(a), float(b)) for a, b in data.get("time_map") or ()))

    def timed(self, items: Sequence[Timing], shift: float = 0.0) -> tuple[Timing, ...]:
        """Timings said over the synthesized voice, where the reshaped voice says them
        (then moved by ``shift`` seconds)."""
        if len(self.time_map) < 2:
            return stretched(items, self.time_scale, shift)
        xs = np.array([k[0] for k in self.time_map])
        ys = np.array([k[1] for k in self.time_map])

        def at(t: float) -> float:
            if t >= xs[-1]:  # past the last knot: the tempo's slope
                return float(ys[-1] + (t - xs[-1]) * self.time_scale)
            return float(np.interp(t, xs, ys))
        return tuple(Timing(at(t.start) + shift, at(t.end) + shift, t.text) for t in items)


@dataclass(frozen=True)
class BgmOutput:
    """The voice mixed over the music (AAC), and where the voice starts in it."""

    mix_key: str
    track: str | None = None
    lead_in: float = 0.0  # seconds of music before the voice
    tail: float = 0.0  # and after it
    mixing: dict[str, Any] = field(default_factory=dict)  # the mix report (JSON)
    backend: str = "pyloudnorm"

    def as_dict(self) -> dict[str, Any]:
        return {"mix_key": self.mix_key, "track": self.track, "lead_in": self.lead_in,
                "tail": self.tail, "mixing": self.mixing, "backend": self.backend}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BgmOutput:
        return cls(str(data["mix_key"]), _optional_str(data.get("track")),
                   float(data.get("lead_in") or 0.0), float(data.get("tail") or 0.0),
                   dict(data.get("mixing") or {}), str(data.get("backend") or "pyloudnorm"))


@dataclass(frozen=True)
class VideoOutput:
    """The rendered video and the sentence timings its soundtrack has."""

    video_key: str
    duration: float
    size: str
    backend: str | None = None
    fallback_used: bool = False
    fallback_method: str | None = None
    speech_sentences: tuple[Timing, ...] = ()  # in the video's time (lead-in included)
    passed_over: tuple[dict[str, Any], ...] = ()  # see passed_over()

    def as_dict(self) -> dict[str, Any]:
        return {"video_key": self.video_key, "duration": round(self.duration, 3),
                "size": self.size, "backend": self.backend, "fallback_used": self.fallback_used,
                "fallback_method": self.fallback_method,
                "speech_sentences": timing_rows(self.speech_sentences),
                "passed_over": list(self.passed_over)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoOutput:
        return cls(str(data["video_key"]), float(data["duration"]), str(data["size"]),
                   _optional_str(data.get("backend")), bool(data.get("fallback_used")),
                   _optional_str(data.get("fallback_method")),
                   timings_of(data.get("speech_sentences") or ()),
                   tuple(data.get("passed_over") or ()))


@dataclass(frozen=True)
class SubtitlesOutput:
    """The video with subtitles burned in, and the subtitle files beside it."""

    video_key: str
    srt_key: str
    vtt_key: str
    cues: int
    backend: str = "ffmpeg+noto-cjk"

    def as_dict(self) -> dict[str, Any]:
        return {"video_key": self.video_key, "srt_key": self.srt_key, "vtt_key": self.vtt_key,
                "cues": self.cues, "backend": self.backend}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubtitlesOutput:
        return cls(str(data["video_key"]), str(data["srt_key"]), str(data["vtt_key"]),
                   int(data.get("cues") or 0), str(data.get("backend") or "ffmpeg+noto-cjk"))


@dataclass(frozen=True)
class Finished:
    """The outputs of the stages that have finished so far, typed (the queue keeps them as
    JSON; skipped stages are absent). A stage reads what it waits for (its ``after``)."""

    image: ImageOutput | None = None
    voice: VoiceOutput | None = None
    prosody: ProsodyOutput | None = None
    bgm: BgmOutput | None = None
    video: VideoOutput | None = None
    subtitles: SubtitlesOutput | None = None

    @classmethod
    def from_dicts(cls, outputs: Mapping[str, Mapping[str, Any]]) -> Finished:
        def got(name: str) -> Mapping[str, Any] | None:
            return outputs.get(name) or None

        image, voice, prosody = got("image"), got("voice"), got("prosody")
        bgm, video, subtitles = got("bgm"), got("video"), got("subtitles")
        return cls(ImageOutput.from_dict(image) if image else None,
                   VoiceOutput.from_dict(voice) if voice else None,
                   ProsodyOutput.from_dict(prosody) if prosody else None,
                   BgmOutput.from_dict(bgm) if bgm else None,
                   VideoOutput.from_dict(video) if video else None,
                   SubtitlesOutput.from_dict(subtitles) if subtitles else None)


T = TypeVar("T")


def need(value: T | None, stage: str) -> T:
    """A finished stage's output that the caller waits for (its absence is a wiring bug)."""
    if value is None:
        raise RuntimeError(f"the {stage} stage has not finished")
    return value
