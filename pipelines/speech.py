"""Synthesis routing: which engine says a text, in which voice, and converting the speech to a
voice profile.

Plain functions over engine chains (no HTTP, no Gradio). A voice arrives parsed
(:class:`~pipelines.voice_ref.VoiceRef`); what an engine can say it answers itself through
the :class:`~models.base.SpeechEngine` protocol, so nothing here knows an engine by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from models.base import (
    Attempt,
    Audio,
    ChainExhausted,
    ChainResult,
    FallbackChain,
    ProgressFn,
    Speech,
    SpeechEngine,
    VoiceConverter,
    VoiceTarget,
    no_progress,
)
from models.errors import BackendUnavailable, InvalidInput
from models.speech.dsp import normalize_peak
from pipelines.media import validate_text
from pipelines.voice_options import VoiceOptions
from pipelines.voice_profiles import Profile, ProfileStore
from pipelines.voice_ref import VOICE_TYPE_NAMES, VoiceKind, VoiceRef, normalize_voice_type
from pipelines.voice_sources import find_source

LANGUAGES = ("ja", "en")


# ----------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ChainReport:
    """Which engine of a chain did the work and what was passed over on the way."""

    backend: str
    attempts: tuple[Attempt, ...] = ()

    @classmethod
    def of(cls, result: ChainResult[Any]) -> ChainReport:
        return cls(result.backend, result.attempts)

    def _result(self) -> ChainResult[None]:
        """The chain's result without its value: it knows what a fallback is."""
        return ChainResult(None, self.backend, self.attempts)

    @property
    def fallback_used(self) -> bool:
        return self._result().fallback_used

    @property
    def fallback_method(self) -> str | None:
        return self._result().fallback_method

    def as_dict(self) -> dict[str, Any]:
        """The chain's own record (``backend``, ``fallback_used``, ``fallback_method``,
        ``attempts``)."""
        return self._result().report()


@dataclass(frozen=True)
class ConversionReport(ChainReport):
    """The converter chain's record plus what a person reads (``label``) and its time."""

    label: str = ""
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "label": self.label, "duration_s": self.duration_s}


@dataclass
class SynthesisReport:
    """What made a piece of speech: the API response, the job's stage record and the Voice
    tab's engine line all show it."""

    chain: ChainReport
    voice: str | None
    voice_type: VoiceKind
    language: str
    method: str = "tts"
    timings: dict[str, float] = field(default_factory=dict)
    conversion: ConversionReport | None = None
    profile_id: str | None = None
    duration: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    """What a particular voice adds to the record (an evolved voice: its label and scores)."""

    @property
    def backend(self) -> str:
        return self.chain.backend

    @property
    def fallback_used(self) -> bool:
        return self.chain.fallback_used or bool(self.conversion and self.conversion.fallback_used)

    @property
    def fallback_method(self) -> str | None:
        if self.chain.fallback_method or not self.fallback_used:
            return self.chain.fallback_method
        return self.conversion.backend if self.conversion else None

    @property
    def engine(self) -> str:
        """The engine that gave the audio its voice (the converter for a profile)."""
        return self.conversion.backend if self.conversion else self.chain.backend

    def as_dict(self) -> dict[str, Any]:
        """The JSON record (same keys as the API has always sent)."""
        out: dict[str, Any] = {
            **self.chain.as_dict(), "fallback_used": self.fallback_used,
            "fallback_method": self.fallback_method, "voice": self.voice, "voice_type": VOICE_TYPE_NAMES[self.voice_type], "language": self.language,
            "method": self.method, "timings": dict(self.timings)}
        if self.conversion is not None:
            out["conversion"] = self.conversion.as_dict()
        if self.conversion is not None or self.profile_id is not None:
            out["profile_id"] = self.profile_id
        out.update(self.details)
        out["duration"] = self.duration
        return out


# ------------------------------------------------------------------------ voices


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


@dataclass(frozen=True)
class VoiceChoice:
    """A request's voice as the REST body spells it: ``voice_type`` says how strictly to
    keep to it (a ``"voicevox"`` request never falls back to another engine; a built-in
    request naming a VOICEVOX style does), ``source`` is the built-in voice a profile's
    speech starts from (None: the one calibration chose)."""

    voice_type: VoiceKind
    voice: VoiceRef | None = None
    source: VoiceRef | None = None

    @classmethod
    def of(cls, voice: VoiceRef | None) -> VoiceChoice:
        """What a door that spells the voice as one string means by it."""
        return cls(voice.kind if voice is not None else "builtin", voice)

    @classmethod
    def from_fields(cls, voice_type: str | None, voice: str | None,
                    profile_id: str | None) -> VoiceChoice:
        """The REST body's ``voice_type``, ``voice`` (or ``speaker``) and ``profile_id``."""
        kind = normalize_voice_type(voice_type)
        if kind == "profile":
            if not profile_id:
                raise InvalidInput("voice_type 'profile' needs a profile_id.",
                                   code="VOICE_PROFILE_ID_REQUIRED",
                                   message_ja="profile_id を指定してください。")
            return cls(kind, VoiceRef("profile", profile_id), _builtin(voice))
        if kind == "style":
            text = (voice or "").strip()
            ref = VoiceRef.voicevox(text) if text.isdigit() else VoiceRef.parse(text)
            if ref is not None and ref.kind != "style":
                raise InvalidInput(f"A VOICEVOX speaker is a style id number, not {voice!r}.",
                                   code="VOICE_UNKNOWN_VOICE",
                                   message_ja="VOICEVOX の speaker はスタイル ID（数値）です。")
            return cls(kind, ref)
        return cls(kind, _builtin(voice))


def _builtin(voice: str | None) -> VoiceRef | None:
    """A voice to speak in directly (a profile id is not one)."""
    ref = VoiceRef.parse(voice)
    if ref is not None and ref.is_profile:
        raise InvalidInput(f"Unknown voice {voice!r}.", code="VOICE_UNKNOWN_VOICE",
                           message_ja=f"声 {voice!r} がありません。", details={"voice": voice})
    return ref


# --------------------------------------------------------------------- synthesis


def synthesize(
    text: str,
    *,
    tts: FallbackChain[Any],
    choice: VoiceChoice | None = None,
    language: str = "ja",
    options: VoiceOptions | None = None,
    profiles: ProfileStore | None = None,
    converters: FallbackChain[Any] | None = None,
    progress: ProgressFn = no_progress,
) -> tuple[Speech, SynthesisReport]:
    """Text -> speech (24 kHz mono) in a built-in voice, a VOICEVOX style or a profile's
    voice (then ``profiles`` and ``converters`` are needed), with its report."""
    text = validate_text(text, area="VOICE")
    if language not in LANGUAGES:
        raise InvalidInput(f"Unsupported language {language!r}.", code="VOICE_INVALID_LANGUAGE",
                           message_ja=f"未対応の言語 {language!r} です。",
                           details={"allowed": list(LANGUAGES)})
    opts = options or VoiceOptions()
    choice = choice or VoiceChoice("builtin")
    profile: Profile | None = None
    voice = choice.voice
    if choice.voice_type == "profile":
        if profiles is None or converters is None:
            raise BackendUnavailable("Voice profiles are not configured.",
                                     code="VOICE_SERVICE_UNAVAILABLE",
                                     message_ja="ボイスプロファイルが使えません。", retry_after=30)
        if voice is None or not voice.is_profile:
            raise InvalidInput("voice_type 'profile' needs a profile_id.",
                               code="VOICE_PROFILE_ID_REQUIRED",
                               message_ja="profile_id を指定してください。")
        profile = profiles.get(voice.id)
        if choice.source is None:  # the profile's evolved voice serves, when it has one
            from pipelines.voice_evolved import speak_evolved

            evolved = speak_evolved(tts, profiles, profile, opts.request(text, None, language))
            if evolved is not None:
                said, evolved_report = evolved
                if converters is not None:  # the evolved voice is matched like any other
                    said = _converted(said, evolved_report, profile, profiles, converters,
                                      progress)
                evolved_report.duration = round(said.audio.duration, 3)
                progress(1.0, "done")
                return said, evolved_report
        if choice.source is None:  # the voice measured to serve this language
            served = _speak_served(text, tts, profile, profiles, converters, opts, language,
                                   progress)
            if served is not None:
                return served
        voice = choice.source or _profile_source_voice(tts, profile, language)
    if choice.voice_type == "style":
        engine = style_service(tts)
        if engine is None:
            raise BackendUnavailable("VOICEVOX is not among the configured speech engines.",
                                     code="VOICE_SERVICE_UNAVAILABLE",
                                     message_ja="VOICEVOX が設定されていません。", retry_after=30)
        chain: FallbackChain[Any] = FallbackChain(tts.capability, [engine])
    else:
        chain = language_chain(tts, language, voice)
    spoken = str(voice) if voice is not None else None
    request = opts.request(text, spoken, language)
    progress(0.05, "synthesize")
    started = time.perf_counter()
    try:
        result = chain.run(lambda engine: engine.synthesize(request))
    except ChainExhausted as exc:
        raise speech_unavailable(exc) from exc
    speech: Speech = result.value
    report = SynthesisReport(ChainReport.of(result), spoken, choice.voice_type, language,
                             timings={"tts_s": round(time.perf_counter() - started, 3)})
    if profile is not None and profiles is not None and converters is not None:
        speech = _converted(speech, report, profile, profiles, converters, progress)
        report.method = report.engine
        report.profile_id = profile.id
    report.duration = round(speech.audio.duration, 3)
    progress(1.0, "done")
    return speech, report


def _speak_served(text: str, tts: FallbackChain[Any], profile: Profile,
                  profiles: ProfileStore, converters: FallbackChain[Any], options: VoiceOptions,
                  language: str, progress: ProgressFn) -> tuple[Speech, SynthesisReport] | None:
    """``text`` in the voice, converter and strength the profile's serving measure chose for
    ``language`` (:mod:`pipelines.voice_serving`); None for a profile measured before that
    record existed, or whose voice no engine here speaks now (the calibrated voice then)."""
    record = (profile.serving or {}).get(language) or {}
    serves = record.get("serves") or {}
    source = find_source(tts, str(serves.get("voice") or ""), language)
    if source is None:
        return None
    progress(0.05, "synthesize")
    started = time.perf_counter()
    try:
        speech = source.engine.synthesize(options.request(text, source.voice, language))
    except BackendUnavailable:
        return None  # the engine's trouble: the calibrated voice's chain may still speak
    seconds = round(time.perf_counter() - started, 3)
    report = SynthesisReport(
        ChainReport(source.engine.name, (Attempt(source.engine.name, "used", "", seconds),)),
        source.id, "profile", language, method="source_voice", timings={"tts_s": seconds},
        profile_id=profile.id,
        details={"serving": {**serves, "scores": record.get("scores") or {}}})
    converter = serves.get("converter")
    if converter:
        speech = _converted(speech, report, profile, profiles, converters, progress,
                            prefer=str(converter), strength=float(serves.get("strength", 1.0)))
        report.method = report.engine
    report.duration = round(speech.audio.duration, 3)
    progress(1.0, "done")
    return speech, report


def _profile_source_voice(tts: FallbackChain[Any], profile: Profile,
                          language: str) -> VoiceRef | None:
    """The built-in voice voice matching chose for the profile, when it can say ``language``."""
    if profile.matching is None:
        return None
    source = VoiceRef.parse(profile.matching.source_voice)
    if source is None:
        return None
    try:
        owner = voice_owner(tts, source)
    except InvalidInput:
        return None
    return source if language in owner.languages else None


def _converted(speech: Speech, report: SynthesisReport, profile: Profile,
               profiles: ProfileStore, converters: FallbackChain[Any],
               progress: ProgressFn, prefer: str | None = None, strength: float = 1.0
               ) -> Speech:
    """``speech`` through the profile's converters, recorded on ``report``."""
    progress(0.6, "convert")
    target = replace(profile_target(profile, profiles), strength=strength)
    speech, report.conversion = convert_to_profile(speech, profile, profiles, converters,
                                                   target, prefer=prefer)
    report.timings["convert_s"] = report.conversion.duration_s
    return speech


def profile_target(profile: Profile, profiles: ProfileStore) -> VoiceTarget:
    """What converters aim at for ``profile`` (its reference clip read from storage)."""
    return VoiceTarget(f"{profile.id}:{profile.updated_at}", profiles.reference(profile.id),
                       profiles.embedding(profile.id), profile.matching)


def convert_to_profile(speech: Speech, profile: Profile, profiles: ProfileStore,
                       converters: FallbackChain[Any], target: VoiceTarget | None = None,
                       prefer: str | None = None) -> tuple[Speech, ConversionReport]:
    """Run the converter chain (OpenVoice when it has weights, else the DSP matchers).
    ``target``: the profile's, when the caller already read it; ``prefer``: the converter
    the profile's serving measure chose (the rest of the chain stands behind it)."""
    target = target or profile_target(profile, profiles)
    declined = _declined_converter(profile)
    if declined is not None:
        converters = FallbackChain(converters.capability,
                                   [c for c in converters if c.name != declined])
    if prefer is not None:
        converters = FallbackChain(converters.capability, sorted(
            converters, key=lambda c: c.name != prefer))
    started = time.perf_counter()
    try:
        result = converters.run(lambda c: c.convert(speech.audio, target))
    except ChainExhausted as exc:
        raise speech_unavailable(exc) from exc
    audio: Audio = result.value
    peak = float(np.max(np.abs(speech.audio.samples))) if speech.audio.duration else 0.0
    samples = normalize_peak(audio.samples, peak) if peak > 0 else audio.samples
    converted = replace(speech, audio=Audio(samples, audio.sample_rate))
    converted = _timeline_kept(speech, converted)
    engine: VoiceConverter = converters.get(result.backend)
    report = ConversionReport(result.backend, result.attempts, label=engine.method,
                              duration_s=round(time.perf_counter() - started, 3))
    return converted, report


def _timeline_kept(source: Speech, converted: Speech) -> Speech:
    """The source's sentence and phoneme timings on the converted audio (lip-sync reads
    them). Converters keep the source's timing; one whose output runs longer or shorter
    (by more than 1 %) has its timings scaled to match rather than left to drift."""
    before, after = source.audio.duration, converted.audio.duration
    if not before or abs(after / before - 1.0) <= 0.01:
        return converted
    from pipelines.message_outputs import stretched

    k = after / before
    return replace(converted, sentences=stretched(source.sentences, k),
                   phonemes=stretched(source.phonemes, k))


def _declined_converter(profile: Profile) -> str | None:
    """The converter this profile's calibration measured farther from the person than voice
    matching (``similarity.serves`` names the other): it is passed over for this profile."""
    similarity = profile.matching.similarity if profile.matching else {}
    measured, serves = similarity.get("served_by"), similarity.get("serves")
    return str(measured) if measured and serves and serves != measured else None


def profile_finisher(profile: Profile, profiles: ProfileStore, converters: FallbackChain[Any]
                     ) -> Callable[[Audio], Audio]:
    """What serving a profile does to speech once synthesized: its converter chain (the
    profile's reference is read once, not for every sentence a search scores)."""
    target = profile_target(profile, profiles)

    def finish(audio: Audio) -> Audio:
        return convert_to_profile(Speech(audio), profile, profiles, converters,
                                  target)[0].audio
    return finish


def list_voices(tts: FallbackChain[Any]) -> list[dict[str, Any]]:
    """Built-in voices of every configured engine (remote ones only when reachable)."""
    out: list[dict[str, Any]] = []
    for engine in tts:
        ok, why = engine.available()
        row = {"engine": engine.name, "available": ok, "reason": why}
        if not ok or not isinstance(engine, SpeechEngine):
            out.append({**row, "voices": []})
            continue
        try:
            voices = engine.voices()
        except Exception as exc:  # one engine's trouble must not hide the rest
            out.append({**row, "available": False, "reason": f"{exc}", "voices": []})
            continue
        out.append({**row, "voices": [asdict(v) for v in voices]})
    return out
