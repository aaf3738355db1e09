"""Kokoro speaking with a style tensor of its own (a voice evolved for a profile), in
Japanese (the bundled G2P) and English (espeak-ng phonemes, :mod:`kokoro_english`).

It borrows the loaded model of a :class:`~models.speech.kokoro.KokoroSpeech` (one session per
process) and only swaps the voice pack, so it costs nothing to make one per request. It knows
that engine only through :class:`KokoroModel` (what it borrows), so the two modules do not
import each other: ``KokoroSpeech.styled`` makes one.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from models.base import EVOLVED_VOICE, EngineSettings, VoiceInfo
from models.speech.kokoro_english import english_phonemes
from models.speech.local import LocalSpeech, UnitAudio

STYLE_VOICE = EVOLVED_VOICE


class KokoroModel(Protocol):
    """What a styled voice borrows from the loaded Kokoro engine."""

    settings: EngineSettings
    unit_workers: int

    def available(self) -> tuple[bool, str]: ...

    def japanese_phonemes(self, text: str) -> str: ...

    def say(self, phonemes: str, end: str, pack: np.ndarray, speed: float) -> UnitAudio: ...


class StyledKokoro(LocalSpeech):
    """Kokoro with ``pack`` (510 length-bucketed rows of 256 style values) as its voice."""

    name = "kokoro"
    VOICES = (
        VoiceInfo(STYLE_VOICE, "Evolved built-in voice (Kokoro style search)", "ja", "", "kokoro"),
        VoiceInfo(STYLE_VOICE, "Evolved built-in voice (Kokoro style search)", "en", "", "kokoro"),
    )

    def __init__(self, engine: KokoroModel, pack: np.ndarray) -> None:
        super().__init__(engine.settings)
        self.engine = engine
        self.pack = np.asarray(pack, np.float32)
        self.unit_workers = engine.unit_workers

    def available(self) -> tuple[bool, str]:
        return self.engine.available()

    def phonemes(self, text: str, language: str) -> str:
        if language == "en":
            return english_phonemes(text)
        return self.engine.japanese_phonemes(text)

    def _unit_timed(self, text: str, end: str, voice: str, speed: float,
                    language: str) -> UnitAudio:
        return self.engine.say(self.phonemes(text, language), end, self.pack, speed)
