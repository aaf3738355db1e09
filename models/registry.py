"""The explicit engine registry: one entry per engine, per capability.

Adding an engine means writing one module with a class whose constructor takes
:class:`~models.base.EngineSettings`, and adding one line here. The names feed settings
validation (``STUDIO_<CAPABILITY>_BACKENDS``), the UI's engine choices and ``/health``.
Entries are import paths, so a heavy engine (torch, mediapipe) is imported only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from models.base import EngineSettings
from models.chain import FallbackChain

CAPABILITIES: dict[str, dict[str, str]] = {
    "tts": {
        "kokoro": "models.speech.kokoro:KokoroSpeech",
        "piper": "models.speech.piper:PiperSpeech",
        "openjtalk": "models.speech.openjtalk:OpenJTalkSpeech",
        "voicevox": "models.speech.voicevox:VoicevoxSpeech",
    },
    "voice_encoder": {
        "resemblyzer": "models.voice.resemblyzer:ResemblyzerEncoder",
    },
    "voice_converter": {
        "openvoice": "models.voice.openvoice:OpenVoiceConverter",
        "timbre_filter": "models.voice.timbre_filter:TimbreFilter",
        "frame_matching": "models.voice.frame_matching:FrameMatcher",
        "voice_matching": "models.voice.matching:VoiceMatcher",
    },
    "denoise": {
        "deepfilternet": "models.voice.denoise:DeepFilterDenoiser",
    },
    "naturalness": {
        "distillmos": "models.voice.naturalness:DistillMos",
        "dnsmos": "models.voice.naturalness:DnsMos",
    },
    "person_detection": {
        "mediapipe": "models.detect.person:PersonDetector",
    },
    "cutout": {
        "birefnet": "models.cutout.birefnet:BiRefNetCutout",
        "segformer": "models.cutout.segformer:SegformerCutout",
        "mediapipe": "models.cutout.mediapipe:MediapipeCutout",
        "aws": "models.cutout.aws:NovaCanvasCutout",
    },
    "refiner": {
        "sam2": "models.refine.sam2:Sam2Refiner",
        "closed_form": "models.refine.closed_form:ClosedFormRefiner",
    },
    "talking_head": {
        "wav2lip": "models.talking_head.wav2lip:Wav2LipHead",
        "builtin": "models.talking_head.landmark:LandmarkHead",
        "did": "models.talking_head.did:DidTalkingHead",
    },
}

DEFAULT_ORDER: dict[str, tuple[str, ...]] = {
    "tts": ("kokoro", "piper", "openjtalk", "voicevox"),
    "voice_encoder": ("resemblyzer",),
    # frame_matching stays registered (selectable) but off by default: it garbles words
    # (Whisper missed 39 %) and never qualified to serve a profile in the three-axis measure
    "voice_converter": ("openvoice", "timbre_filter", "voice_matching"),
    "denoise": ("deepfilternet",),
    "naturalness": ("distillmos", "dnsmos"),
    "person_detection": ("mediapipe",),
    "cutout": ("birefnet", "segformer", "mediapipe", "aws"),
    "refiner": ("sam2", "closed_form"),
    "talking_head": ("wav2lip", "builtin", "did"),
}


# Engines that call another service: each gets a circuit breaker (models/circuit.py).
REMOTE_ENGINES: frozenset[str] = frozenset({"voicevox", "did", "aws"})


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
    target = CAPABILITIES[capability][name]
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
