"""The built-in voices a profile's speech can start from, in each language.

A voice speaks its own language through its engine; a voice of a style engine (Kokoro's
Japanese packs) also speaks the other language through the engine's espeak-ng phonemes
(``StyleSpace.styled``), so an English profile of a woman can start from a woman's voice
instead of Piper's only English voice, a man's. Measured from outside (``bench/voice_rest.py``):
Kokoro's packs speaking English keep DistillMOS 3.9-4.1 and Whisper's WER 0.03-0.06.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from models.base import EVOLVED_VOICE, FallbackChain, SpeechEngine, StyleSpace


@dataclass(frozen=True)
class SourceVoice:
    """A built-in voice (``id``) as it says ``language``: ``engine`` speaks with ``voice``."""

    id: str
    language: str
    engine: SpeechEngine
    voice: str
    crossed: bool = False
    """True: the voice speaks outside its own language (a Kokoro pack saying English)."""

    @property
    def cache_name(self) -> str:
        """The calibration cache's engine name (a crossed voice is another speaker)."""
        return f"{self.engine.name}-crossed" if self.crossed else self.engine.name


def _native(tts: FallbackChain[Any], language: str) -> Iterator[SourceVoice]:
    for engine in tts:
        if not isinstance(engine, SpeechEngine) or engine.style_service:
            continue
        if language not in engine.languages or not engine.available()[0]:
            continue
        for info in engine.voices():
            if info.language == language:
                yield SourceVoice(info.id, language, engine, info.id)


def _crossed(tts: FallbackChain[Any], language: str) -> Iterator[SourceVoice]:
    for engine in tts:
        if not isinstance(engine, StyleSpace) or not engine.available()[0]:
            continue
        if not isinstance(engine, SpeechEngine) or language in engine.languages:
            continue
        for voice in engine.style_voices():
            styled = engine.styled(engine.pack(voice))
            if language in styled.languages:
                yield SourceVoice(voice, language, styled, EVOLVED_VOICE, crossed=True)


def source_voices(tts: FallbackChain[Any], language: str) -> list[SourceVoice]:
    """Every voice that can start a profile's speech in ``language``: the language's own
    voices first (the first is the language's plain voice), then crossed ones."""
    return [*_native(tts, language), *_crossed(tts, language)]


def find_source(tts: FallbackChain[Any], voice: str, language: str) -> SourceVoice | None:
    """``voice`` speaking ``language`` (its own engine first), or None when none can."""
    return next((s for s in source_voices(tts, language) if s.id == voice), None)
