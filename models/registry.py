"""The explicit engine registry: one entry per engine, per capability.

Adding an engine means writing one module with a class whose constructor takes
:class:`~models.base.EngineSettings`, and adding one :class:`Entry` here. The names feed
settings validation (``STUDIO_<CAPABILITY>_BACKENDS``), the UI's engine choices and
``/health``. An engine whose weights the model manager downloads declares its
:class:`~models.catalog.ModelSpec` (files, licence, and its label and licence note in English
and Japanese) in its own module and names it in ``weights=``: the model catalogue, the Models
panel and ``python -m app.models`` read it from there, so nothing else changes.
Entries are import paths, so a heavy engine (torch, mediapipe) is imported only when used
(the catalogue imports the modules that declare weights, so those keep torch out of their
top level).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from models.base import EngineSettings
from models.chain import FallbackChain


@dataclass(frozen=True)
class Entry:
    """One registered engine: its class (``"module:Class"``), the spec of the weights it
    downloads (``"module:NAME"``, a :class:`~models.catalog.ModelSpec`), and whether it calls
    another service (then it gets a circuit breaker, :mod:`models.circuit`)."""

    target: str
    weights: str | None = None
    remote: bool = False


CAPABILITIES: dict[str, dict[str, Entry]] = {
    "tts": {
        "kokoro": Entry("models.speech.kokoro:KokoroSpeech"),
        "piper": Entry("models.speech.piper:PiperSpeech"),
        "openjtalk": Entry("models.speech.openjtalk:OpenJTalkSpeech"),
        "voicevox": Entry("models.speech.voicevox:VoicevoxSpeech", remote=True),
    },
    "voice_encoder": {
        "resemblyzer": Entry("models.voice.resemblyzer:ResemblyzerEncoder"),
    },
    "voice_converter": {
        "openvoice": Entry("models.voice.openvoice:OpenVoiceConverter",
                           weights="models.voice.openvoice:WEIGHTS"),
        "timbre_filter": Entry("models.voice.timbre_filter:TimbreFilter"),
        "timbre_filter_kinds": Entry("models.voice.timbre_filter_kinds:KindTimbreFilter"),
        "formant_warp": Entry("models.voice.formant_warp:FormantWarp"),
        "frame_matching": Entry("models.voice.frame_matching:FrameMatcher"),
        "voice_matching": Entry("models.voice.matching:VoiceMatcher"),
    },
    "denoise": {
        "deepfilternet": Entry("models.voice.denoise:DeepFilterDenoiser"),
    },
    "naturalness": {
        "distillmos": Entry("models.voice.naturalness:DistillMos"),
        "dnsmos": Entry("models.voice.naturalness:DnsMos"),
    },
    "person_detection": {
        "mediapipe": Entry("models.detect.person:PersonDetector"),
    },
    "cutout": {
        "birefnet": Entry("models.cutout.birefnet:BiRefNetCutout",
                          weights="models.cutout.birefnet:WEIGHTS"),
        "segformer": Entry("models.cutout.segformer:SegformerCutout",
                           weights="models.cutout.segformer:WEIGHTS"),
        "mediapipe": Entry("models.cutout.mediapipe:MediapipeCutout"),
        "aws": Entry("models.cutout.aws:NovaCanvasCutout", remote=True),
    },
    "refiner": {
        "sam2": Entry("models.refine.sam2:Sam2Refiner",
                      weights="models.refine.sam2:WEIGHTS"),
        "closed_form": Entry("models.refine.closed_form:ClosedFormRefiner"),
    },
    "talking_head": {
        "wav2lip": Entry("models.talking_head.wav2lip:Wav2LipHead",
                         weights="models.talking_head.wav2lip:WEIGHTS"),
        "builtin": Entry("models.talking_head.landmark:LandmarkHead"),
        "did": Entry("models.talking_head.did:DidTalkingHead", remote=True),
    },
}

DEFAULT_ORDER: dict[str, tuple[str, ...]] = {
    "tts": ("kokoro", "piper", "openjtalk", "voicevox"),
    "voice_encoder": ("resemblyzer",),
    # frame_matching stays registered (selectable) but off by default: it garbles words
    # (Whisper missed 39 %) and never qualified to serve a profile in the three-axis measure
    "voice_converter": ("openvoice", "timbre_filter", "timbre_filter_kinds", "formant_warp",
                        "voice_matching"),
    "denoise": ("deepfilternet",),
    "naturalness": ("distillmos", "dnsmos"),
    "person_detection": ("mediapipe",),
    "cutout": ("birefnet", "segformer", "mediapipe", "aws"),
    "refiner": ("sam2", "closed_form"),
    "talking_head": ("wav2lip", "builtin", "did"),
}


# Engines that call another service: each gets a circuit breaker (models/circuit.py).
REMOTE_ENGINES: frozenset[str] = frozenset(
    name for engines in CAPABILITIES.values() for name, entry in engines.items() if entry.remote)


class MissingEngine:
    """Stands in for a registered engine whose module is absent from this build."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self._reason = reason

    def available(self) -> tuple[bool, str]:
        return False, self._reason

    def close(self) -> None:
        pass


def create_engine(capability: str, name: str, settings: EngineSettings) -> Any:
    """Instantiate one registered engine (cheap: engines load models lazily)."""
    target = CAPABILITIES[capability][name].target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            return MissingEngine(name, f"engine module {module_name} is not in this build")
        return MissingEngine(name, f"missing dependency: {exc.name}")
    engine = getattr(module, attr)(settings)
    if name in REMOTE_ENGINES:
        from models.circuit import CircuitBreaker

        return CircuitBreaker(engine)
    return engine


def build_chain(capability: str, names: list[str], settings: EngineSettings
                ) -> FallbackChain[Any]:
    return FallbackChain(capability, [create_engine(capability, n, settings) for n in names])
