"""Synthesis routing: which engine says a text, in which voice, and converting the speech to a
voice profile.

Plain functions over engine chains (no HTTP, no Gradio). A voice arrives parsed
(:class:`~pipelines.voice.ref.VoiceRef`); what an engine can say it answers itself through
the :class:`~models.base.SpeechEngine` protocol, so nothing here knows an engine by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from models.base import (
    Audio,
    ProgressFn,
    Speech,
    SpeechEngine,
    VoiceConverter,
    VoiceTarget,
    no_progress,
)
from models.chain import Attempt, ChainExhausted, FallbackChain
from models.errors import BackendUnavailable, InvalidInput
from models.speech.dsp import normalize_peak
from pipelines.media import stretched, validate_text
from pipelines.voice.engines import (
    LANGUAGES,
    language_chain,
    speech_unavailable,
    style_service,
    voice_owner,
)
from pipelines.voice.options import VoiceOptions
from pipelines.voice.profiles import Profile, ProfileStore
from pipelines.voice.ref import VoiceKind, VoiceRef, normalize_voice_type
from pipelines.voice.reports import ChainReport, ConversionReport, SynthesisReport
from pipelines.voice.sources import find_source


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
            from pipelines.voice.evolved_speech import speak_evolved

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
    ``language`` (:mod:`pipelines.voice.serving`); None for a profile measured before that
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
