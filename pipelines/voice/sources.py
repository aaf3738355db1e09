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

from models.base import EVOLVED_VOICE, SpeechEngine, StyleSpace
from models.chain import FallbackChain
from models.errors import StudioError


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


BLENDS = (
    "jm_kumo:0.3+jf_alpha:0.7", "jm_kumo:0.3+jf_gongitsune:0.7",
    "jf_alpha:0.5+jf_gongitsune:0.5", "jm_kumo:0.7+jf_gongitsune:0.3",
    "jm_kumo/jm_kumo:0.7+jf_nezumi:0.3", "jm_kumo/jm_kumo:0.5+jf_nezumi:0.5",
)
"""Mixes of a style engine's own packs offered as voices of their own: between the packs lie
voices none of them is, and a mix keeps the engine's naturalness where a DSP conversion
that moves as far does not. A woman's pack with 30 % of the man's lowers and darkens it,
the man's with 30 % of a woman's lifts it, two women's packs meet halfway. Chosen in the lab
from 18 mixes, by the bench's d-vector judge (which the studio never uses) on four
LibriSpeech speakers, two sentences each, against the nearest single pack: one woman's
English 0.50 -> 0.58 (DistillMOS 3.92 -> 4.29), another's Japanese 0.25 -> 0.33 (3.93 ->
4.23), a man's Japanese 0.24 -> 0.27 and English 0.39 -> 0.41; for the other speakers a pack
stays nearest. Left out: mixes of the breathier packs (Nezumi, Tebukuro) with each other
or with Gongitsune, which lost 1.1-1.5 DistillMOS to the plain voice in Japanese.
The last two keep Kumo's sound and speak with a mix of his prosody and Nezumi's
(``"timbre/prosody"``, :meth:`~models.speech.kokoro.KokoroSpeech.halves`): a man's voice
still, at a median pitch of 128 and 156 Hz where Kumo speaks at 91 (the calibration
sentence). Kumo is the only man's pack, and a man who speaks higher than him had no voice
near him. In the lab (the same judge, 4 speakers, 3 sentences), for the man whose English
profile gained least, the speaker encoder's pick moved from Kumo with 30 % Gongitsune
(judged 0.37 English, 0.26 Japanese) to the 128 Hz voice (0.44, 0.33; the plain voices
0.41, 0.03), DistillMOS 4.2-4.3 as the pick before; the other three speakers' picks did not
change. A woman's prosody whole on Kumo's sound, or Kumo's on a woman's, fell to DistillMOS
1.7-2.6; 30-50 % of Kumo's on a woman's, 2.6-4.3, and came nearer no one. Each costs three
sentences per language once per install (the shipped seed holds them). A mix naming a
pack the engine lacks is skipped."""


def _blended(tts: FallbackChain[Any], language: str) -> Iterator[SourceVoice]:
    for engine in tts:
        if not isinstance(engine, StyleSpace) or not engine.available()[0]:
            continue
        if not isinstance(engine, SpeechEngine):
            continue
        for blend in BLENDS:
            try:
                engine.parse_blend(blend)
            except StudioError:  # a pack this engine lacks
                continue
            styled = engine.styled(engine.pack(blend))
            if language in styled.languages:
                yield SourceVoice(blend, language, styled, EVOLVED_VOICE,
                                  crossed=language not in engine.languages)


def _sources(tts: FallbackChain[Any], language: str) -> Iterator[SourceVoice]:
    yield from _native(tts, language)
    yield from _crossed(tts, language)
    yield from _blended(tts, language)


def source_voices(tts: FallbackChain[Any], language: str) -> list[SourceVoice]:
    """Every voice that can start a profile's speech in ``language``: the language's own
    voices first (the first is the language's plain voice), then crossed ones, then mixes
    (:data:`BLENDS`)."""
    return list(_sources(tts, language))


def find_source(tts: FallbackChain[Any], voice: str, language: str) -> SourceVoice | None:
    """``voice`` speaking ``language`` (its own engine first), or None when none can."""
    return next((s for s in _sources(tts, language) if s.id == voice), None)
