"""The media values engines exchange, engine settings, and one protocol per capability.

Every engine is a small class with a ``name``, ``available() -> (ok, reason)``, one work
method and ``close()`` (:class:`~models.chain.Engine`); the chain that tries them in order is
:mod:`models.chain`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from models.chain import Engine

# --------------------------------------------------------------------------- media values


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] and their rate: the one audio value every layer passes."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.ndim != 1:
            raise ValueError("Audio samples must be mono (1-D)")
        if self.samples.dtype != np.float32:
            object.__setattr__(self, "samples", self.samples.astype(np.float32))

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class Timing:
    """A span of the audio and what is said in it (a sentence, word or phoneme)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Speech:
    """Synthesized audio plus what the engine knows about its timing (may be empty)."""

    audio: Audio
    sentences: tuple[Timing, ...] = ()
    phonemes: tuple[Timing, ...] = ()


# ----------------------------------------------------------------------------- progress

ProgressFn = Callable[[float, str], None]
"""Called with a fraction in [0, 1] and a short step name. It may raise ``Cancelled``."""


def no_progress(fraction: float, step: str) -> None:
    """A progress callback that ignores its reports."""


def sub_progress(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """Map a stage's own 0..1 onto ``start..end`` of its parent's progress."""

    def report(fraction: float, step: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), step)

    return report


# ------------------------------------------------------------------------ engine settings


@dataclass(frozen=True)
class EngineSettings:
    """What engines may know of the configuration; built by ``app.config`` at start-up."""

    models_dir: Path | None = None
    allow_downloads: bool = False
    cache_dir: Path = Path("data/cache")
    device: str = "auto"
    voicevox_url: str | None = None
    did_url: str = "https://api.d-id.com"
    did_api_key: str | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    bedrock_endpoint_url: str | None = None
    aws_mcp_url: str | None = None
    request_timeout: float = 30.0

    def weights_path(self, *parts: str) -> Path | None:
        """Where a checkpoint would be under ``models_dir`` (None when no models dir)."""
        if self.models_dir is None:
            return None
        return self.models_dir.joinpath(*parts)


# ------------------------------------------------------------------ capability protocols
# One block per capability. The engine modules implement these; FallbackChain stands in
# for any of them. (Each capability's owner may refine its block.)


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    language: str  # "ja" | "en"
    gender: str  # "female" | "male" | "unknown"
    engine: str


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice: str | None = None
    language: str = "ja"
    speed: float = 1.0  # 0.5-2.0
    pitch: float = 0.0  # semitones, -12..12
    intonation: float = 1.0  # 0-2
    volume: float = 1.0  # 0-2
    pause: float = 1.0  # scales punctuation pauses


@runtime_checkable
class SpeechEngine(Engine, Protocol):
    """text -> Speech (24 kHz mono).

    ``languages``: what it can say. ``style_service``: a service addressed by numbered
    styles (VOICEVOX) rather than by voice ids of its own; such an engine owns no built-in
    voice and its list of voices costs a request. ``owns(voice)``: whether ``voice`` (an id
    or, for a :class:`Blending` engine, a blend of its ids) is one of this engine's; a
    malformed blend of its own voices raises ``VOICE_UNKNOWN_VOICE``."""

    style_service: bool

    @property
    def languages(self) -> tuple[str, ...]: ...

    def voices(self) -> list[VoiceInfo]: ...

    def owns(self, voice: str) -> bool: ...

    def synthesize(self, request: SpeechRequest) -> Speech: ...


@runtime_checkable
class Blending(Protocol):
    """A speech engine that can mix its own voices into a new one."""

    def blend(self, weights: Sequence[tuple[str, float]]) -> str | None:
        """The voice spelling of the mix, or None when a voice is not this engine's."""
        ...


EVOLVED_VOICE = "evolved"
"""The voice id a styled engine (:meth:`StyleSpace.styled`) answers to."""


@runtime_checkable
class StyleSpace(Protocol):
    """A speech engine whose voices are points in a style space that can be searched: each
    voice is a pack of style rows (Kokoro: 510 length-bucketed rows of 256 values), and any
    pack can speak. Voice profiles evolve a pack of their own in it."""

    name: str
    unit_workers: int

    def available(self) -> tuple[bool, str]: ...

    def style_voices(self) -> list[str]:
        """The engine's own voices (the search's starting points and directions)."""
        ...

    def pack(self, voice: str) -> np.ndarray:
        """A voice's (or blend's) style pack."""
        ...

    def parse_blend(self, voice: str) -> list[tuple[str, float]]: ...

    def styled(self, pack: np.ndarray) -> SpeechEngine:
        """The engine speaking with ``pack`` as its voice (:data:`EVOLVED_VOICE`), in every
        language it can phonemize."""
        ...


class VoiceEncoder(Engine, Protocol):
    """reference clips -> one L2-normalised speaker embedding."""

    def embed(self, clips: Sequence[Audio]) -> np.ndarray: ...


@dataclass(frozen=True)
class MatchingCalibration:
    """What calibrating a voice profile for voice matching chose: the built-in voice (or
    blend) nearest the person's and the pitch/formant parameters applied to it."""

    method: str
    source_voice: str
    params: dict[str, float]
    similarity: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "source_voice": self.source_voice,
                "params": dict(self.params), "similarity": self.similarity}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MatchingCalibration | None:
        """None for a profile made without calibration (``"matching": null``) or an empty one."""
        if not data or not data.get("source_voice"):
            return None
        return cls(method=str(data.get("method") or ""), source_voice=str(data["source_voice"]),
                   params={k: float(v) for k, v in (data.get("params") or {}).items()},
                   similarity=dict(data.get("similarity") or {}))


@dataclass(frozen=True)
class VoiceTarget:
    """The voice a converter aims at: a profile's reference clip and what was learnt from it
    when the profile was made. ``key`` changes whenever the profile does (converters may
    cache per key); ``matching`` is None for a profile made without calibration."""

    key: str
    reference: Audio
    embedding: np.ndarray | None = None
    matching: MatchingCalibration | None = None
    strength: float = 1.0
    """How far a converter that can go part of the way goes (timbre filtering: 0-1), as the
    profile's serving measure chose it for the language."""


class VoiceConverter(Engine, Protocol):
    """Audio + the target voice -> Audio in that voice."""

    method: str
    """What a person reads for this converter ("voice matching")."""

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio: ...


@runtime_checkable
class Calibrating(Protocol):
    """A voice converter that is calibrated per profile against the built-in voices (voice
    matching): it embeds audio with the encoder named ``encoder_name`` and chooses the
    source voice and its parameters."""

    name: str
    encoder_name: str

    def available(self) -> tuple[bool, str]: ...

    def embed(self, audio: Audio) -> np.ndarray: ...

    def calibrate(self, target: np.ndarray, reference: Audio,
                  candidates: Sequence[tuple[str, Audio]],
                  blend: Callable[[Sequence[tuple[str, float]]], tuple[str, Audio] | None]
                  | None = None,
                  default_voice: str | None = None,
                  embeddings: Mapping[str, np.ndarray] | None = None
                  ) -> MatchingCalibration | None: ...


@runtime_checkable
class Preparing(Protocol):
    """A voice converter that learns what it aims at from a profile's recordings, once per
    profile version (``VoiceTarget.key``): ``prepare`` learns it ahead of the first
    conversion, so that a profile's other work can run meanwhile. It never raises: what
    the recordings cannot give is reported by ``convert``."""

    def available(self) -> tuple[bool, str]: ...

    def prepare(self, target: VoiceTarget) -> None: ...


@runtime_checkable
class Denoiser(Engine, Protocol):
    """Audio -> the same speech with less background noise (same rate and length)."""

    def denoise(self, audio: Audio) -> Audio: ...


@runtime_checkable
class NaturalnessJudge(Engine, Protocol):
    """Speech -> how natural it sounds, as a predicted mean opinion score (1-5)."""

    def naturalness(self, audio: Audio) -> float: ...


class PersonCutout(Engine, Protocol):
    """RGB image (+ optional person box x0,y0,x1,y1) -> float32 alpha matte HxW in [0, 1]."""

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray: ...


class MatteRefiner(Engine, Protocol):
    """RGB image + coarse matte -> refined matte (same shape).

    ``prompted`` says whether the engine segments again from the person's box (a promptable
    segmentation model) rather than only solving the coarse matte's edges; the image pipeline
    notes when an unprompted refiner stood in.
    """

    prompted: bool

    def refine(self, image: Any, matte: np.ndarray,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class Detection:
    """One person: box, confidence, and the face (box and eye centres) when one was seen."""

    bbox: tuple[int, int, int, int]
    confidence: float
    face_bbox: tuple[int, int, int, int] | None = None
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None
    source: str = "face"  # "face" | "pose"

    @property
    def face_area(self) -> int:
        if self.face_bbox is None:
            return 0
        x0, y0, x1, y1 = self.face_bbox
        return (x1 - x0) * (y1 - y0)


class PersonDetection(Engine, Protocol):
    """RGB image + sensitivity (0.1-0.9, higher finds more) -> the people in it, largest face
    first. ``method`` is how the detection report names the technique."""

    method: str

    def detect(self, image: Any, sensitivity: float = 0.5) -> list[Detection]: ...


@dataclass(frozen=True)
class RenderRequest:
    """A portrait (RGB/RGBA PIL image) and the speech it should say.

    ``options`` carries engine-specific choices (D-ID: ``driver_url``, ``result_format``,
    ``stitch``); an engine writes what callers should know (e.g. ``did_talk_id``) into
    ``info``.
    """

    image: Any
    speech: Speech
    size: tuple[int, int] = (512, 512)
    fps: int = 25
    seed: int = 0
    output: Path = Path("out.mp4")
    options: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class TalkingHead(Engine, Protocol):
    """portrait + speech -> an MP4 file at ``request.output``."""

    def render(self, request: RenderRequest, progress: ProgressFn = no_progress) -> Path: ...


T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


class LazyModel(Generic[T]):
    """Load a model once, on first use, thread-safely; never at import, never per call."""

    def __init__(self, loader: Callable[[], T]) -> None:
        self._loader = loader
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._loader()
        return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


def cores() -> int:
    """CPUs this process may run on (the container's 2, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def module_available(module: str) -> tuple[bool, str]:
    """Whether ``module`` can be imported, without importing it."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return (True, "installed") if found else (False, f"python package '{module}' not installed")


@dataclass
class StageReport:
    """One pipeline step's record: what ran, which engine, how long (for API and history)."""

    operation: str
    method: str
    duration: float
    fallback_used: bool = False
    details: dict[str, Any] = field(default_factory=dict)


