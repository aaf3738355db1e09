"""The speech chain's engines by what they can say: which engine owns a voice, which speak a
language, and the errors a request for a voice nobody has gets.

Nothing here knows an engine by name: engines answer for themselves through the
:class:`~models.base.SpeechEngine` protocol.
"""

from __future__ import annotations

from typing import Any

from models.base import SpeechEngine
from models.chain import ChainExhausted, FallbackChain
from models.errors import BackendUnavailable, InvalidInput
from pipelines.voice.ref import VoiceRef

LANGUAGES = ("ja", "en")


def speech_unavailable(exc: ChainExhausted) -> BackendUnavailable:
    return BackendUnavailable(
        "No speech engine is available right now: " + exc.message,
        code="VOICE_SERVICE_UNAVAILABLE",
        message_ja="現在利用できる音声合成エンジンがありません。",
        details=exc.details, retry_after=exc.retry_after or 30)


def speech_engines(tts: FallbackChain[Any]) -> list[SpeechEngine]:
    """The chain's engines that are speech engines (a module missing from this build is
    not)."""
    return [e for e in tts if isinstance(e, SpeechEngine)]


def _unknown_voice(tts: FallbackChain[Any], voice: str) -> InvalidInput:
    ids = sorted(v.id for e in speech_engines(tts) if not e.style_service for v in e.voices())
    return InvalidInput(f"Unknown voice {voice!r}.", code="VOICE_UNKNOWN_VOICE",
                        message_ja=f"声 {voice!r} がありません。",
                        details={"voice": voice, "voices": ids})


def style_service(tts: FallbackChain[Any]) -> SpeechEngine | None:
    """The engine addressed by style ids (VOICEVOX), when one is configured."""
    return next((e for e in speech_engines(tts) if e.style_service), None)


def voice_owner(tts: FallbackChain[Any], voice: VoiceRef) -> SpeechEngine:
    """The engine of the chain that has ``voice`` (an engine's blends count as its own)."""
    if voice.kind == "style":
        engine = style_service(tts)
        if engine is not None:
            return engine
    elif voice.kind == "builtin":
        for engine in speech_engines(tts):
            if not engine.style_service and engine.owns(voice.id):
                return engine
    raise _unknown_voice(tts, str(voice))


def language_chain(tts: FallbackChain[Any], language: str,
                   voice: VoiceRef | None) -> FallbackChain[Any]:
    """The engines that can say ``language``, the voice's own engine first."""
    engines = [e for e in speech_engines(tts) if language in e.languages]
    if voice is not None:
        owner = voice_owner(tts, voice)
        if language not in owner.languages:
            raise InvalidInput(
                f"Voice {str(voice)!r} does not speak {language!r}.",
                code="VOICE_LANGUAGE_MISMATCH",
                message_ja=f"声 {str(voice)!r} は {language} を話せません。",
                details={"voice": str(voice), "language": language})
        engines = [owner] + [e for e in engines if e is not owner]
    return FallbackChain(tts.capability, engines)


def check_voice(tts: FallbackChain[Any], voice: VoiceRef, language: str) -> None:
    """Raise now what synthesizing in ``voice`` would raise for the voice itself (before a
    job is queued): VOICE_UNKNOWN_VOICE or VOICE_LANGUAGE_MISMATCH. Profiles are the
    store's to check."""
    if voice.kind == "style":
        if style_service(tts) is None:
            raise InvalidInput(f"Unknown voice {str(voice)!r}.", code="VOICE_UNKNOWN_VOICE",
                               message_ja=f"声 {str(voice)!r} がありません。",
                               details={"field": "voice", "voice": str(voice)})
    elif voice.kind == "builtin":
        language_chain(tts, language, voice)
