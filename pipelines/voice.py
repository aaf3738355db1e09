"""Speech in a built-in voice or in a person's voice profile; the profile store.

Plain functions over media values and engine chains (no HTTP, no Gradio):

* :func:`synthesize` — text -> :class:`Speech` + a report (which engine, what fell back).
  The one-click message pipeline calls it with the ``tts``, ``voice_encoder`` and
  ``voice_converter`` chains and a :class:`ProfileStore`.
* :func:`check_clip` / :func:`create_profile` — recordings -> a stored voice profile.
* :class:`ProfileStore` — ``voices/openvoice/{profile_id}/{profile.json, reference.wav,
  embedding.npy}``. ``profile.json`` is written last and deleted first, so a half-written
  or half-deleted profile is never listed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from models.base import (
    Audio,
    ChainExhausted,
    FallbackChain,
    ProgressFn,
    Speech,
    SpeechRequest,
    VoiceInfo,
    no_progress,
)
from models.errors import BackendUnavailable, InvalidInput, NotFound
from models.speech.dsp import normalize_peak, trim, voiced_bounds
from pipelines.media import decode_audio, encode_wav, validate_text

PROFILE_ROOT = "voices/openvoice"
PROFILE_ID = re.compile(r"^openvoice_[0-9a-f]{8}$")
LANGUAGES = ("ja", "en")
CLIP_MIN_S = 3.0
CLIP_MAX_S = 30.0
MAX_CLIPS = 5
MIN_SPEECH_S = 1.5
REFERENCE_MAX_S = 30.0
NAME_MAX = 80
CALIBRATION_TEXT = {
    "ja": "こんにちは。今日はとても良い天気ですね。一緒に散歩に行きませんか？",
    "en": "Hello there. The weather is lovely today. Would you like to go for a walk?",
}
EVOLVED_FILES = ("evolved.npz", "evolve_checkpoint.npz")
"""A profile's evolved voice and its search checkpoint (see pipelines.voice_evolved)."""
CONVERTER_LABEL = {"voice_matching": "voice matching",
                   "openvoice": "OpenVoice v2 tone-colour conversion"}


class ProfileStorage(Protocol):
    """The part of ``app.storage.Storage`` the profile store needs."""

    def put(self, key: str, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> Iterator[Any]: ...


# ------------------------------------------------------------------------- options


@dataclass(frozen=True)
class VoiceOptions:
    """Speech parameters with the issue's ranges."""

    speed: float = 1.0  # 0.5-2.0
    pitch: float = 0.0  # semitones, -12..12
    intonation: float = 1.0  # 0-2
    volume: float = 1.0  # 0-2
    pause: float = 1.0  # 0-3, scales punctuation pauses

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"speed": (0.5, 2.0), "pitch": (-12.0, 12.0), "intonation": (0.0, 2.0),
              "volume": (0.0, 2.0), "pause": (0.0, 3.0)}

    def validated(self) -> VoiceOptions:
        for name, (low, high) in self.RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value) \
                    or not low <= value <= high:
                raise InvalidInput(
                    f"Option {name}={value!r} is outside {low}..{high}.",
                    code="VOICE_INVALID_OPTION",
                    message_ja=f"オプション {name}={value!r} は {low}〜{high} の範囲外です。",
                    details={"option": name, "value": value, "min": low, "max": high})
        return self


# ------------------------------------------------------------------------ synthesis


def _engine_ids(engine: Any) -> set[str]:
    return {v.id for v in getattr(engine, "VOICES", ())}


def voice_owner(tts: FallbackChain, voice: str) -> Any:
    """The engine of the chain that has ``voice`` (Kokoro blends count as Kokoro's)."""
    for engine in tts:
        if engine.name == "voicevox" and voice.startswith("voicevox:"):
            return engine
        if voice in _engine_ids(engine):
            return engine
        if engine.name == "kokoro" and ("+" in voice or ":" in voice) and \
                hasattr(engine, "parse_blend"):
            engine.parse_blend(voice)  # raises VOICE_UNKNOWN_VOICE on a bad blend
            return engine
    raise InvalidInput(f"Unknown voice {voice!r}.", code="VOICE_UNKNOWN_VOICE",
                       message_ja=f"声 {voice!r} がありません。",
                       details={"voice": voice,
                                "voices": sorted(i for e in tts for i in _engine_ids(e))})


def _speaks(engine: Any, language: str) -> bool:
    languages = getattr(engine, "languages", None)
    return languages is None or language in languages


def language_chain(tts: FallbackChain, language: str, voice: str | None) -> FallbackChain:
    """The engines that can say ``language``, the voice's own engine first."""
    engines = [e for e in tts if _speaks(e, language)]
    if voice:
        owner = voice_owner(tts, voice)
        if not _speaks(owner, language):
            raise InvalidInput(
                f"Voice {voice!r} does not speak {language!r}.",
                code="VOICE_LANGUAGE_MISMATCH",
                message_ja=f"声 {voice!r} は {language} を話せません。",
                details={"voice": voice, "language": language})
        engines = [owner] + [e for e in engines if e is not owner]
    return FallbackChain(tts.capability, engines)


def _unavailable(exc: ChainExhausted) -> BackendUnavailable:
    return BackendUnavailable(
        "No speech engine is available right now: " + exc.message,
        code="VOICE_SERVICE_UNAVAILABLE",
        message_ja="現在利用できる音声合成エンジンがありません。",
        details=exc.details, retry_after=exc.retry_after or 30)


def synthesize(
    text: str,
    *,
    tts: FallbackChain,
    voice_type: str = "builtin",
    voice: str | None = None,
    language: str = "ja",
    options: VoiceOptions | None = None,
    profile_id: str | None = None,
    profiles: ProfileStore | None = None,
    converters: FallbackChain | None = None,
    progress: ProgressFn = no_progress,
) -> tuple[Speech, dict[str, Any]]:
    """Text -> speech in a built-in voice (``voice_type="builtin"``), a VOICEVOX style
    (``"voicevox"``, ``voice="voicevox:<style id>"`` or a bare id) or a profile's voice
    (``"profile"`` with ``profile_id``, ``profiles`` and ``converters``).

    Returns the :class:`Speech` (24 kHz mono) and a report: ``backend``,
    ``fallback_used``, ``fallback_method``, ``attempts``, ``voice``, ``voice_type``,
    ``method`` and, for profiles, ``conversion`` (converter chain report, ``label``)."""
    text = validate_text(text, area="VOICE")
    if language not in LANGUAGES:
        raise InvalidInput(f"Unsupported language {language!r}.", code="VOICE_INVALID_LANGUAGE",
                           message_ja=f"未対応の言語 {language!r} です。",
                           details={"allowed": list(LANGUAGES)})
    opts = (options or VoiceOptions()).validated()
    voice_type = normalize_voice_type(voice_type)
    profile: dict[str, Any] | None = None
    if voice_type == "profile":
        if not profile_id:
            raise InvalidInput("voice_type 'profile' needs a profile_id.",
                               code="VOICE_PROFILE_ID_REQUIRED",
                               message_ja="profile_id を指定してください。")
        if profiles is None or converters is None:
            raise BackendUnavailable("Voice profiles are not configured.",
                                     code="VOICE_SERVICE_UNAVAILABLE",
                                     message_ja="ボイスプロファイルが使えません。", retry_after=30)
        profile = profiles.get(profile_id)
        if voice is None:  # the profile's evolved voice serves, when it has a better one
            from pipelines.voice_evolved import speak_evolved

            evolved = speak_evolved(tts, profiles, profile, SpeechRequest(
                text=text, language=language, speed=opts.speed, pitch=opts.pitch,
                intonation=opts.intonation, volume=opts.volume, pause=opts.pause))
            if evolved is not None:
                progress(1.0, "done")
                return evolved
        voice = voice or _profile_source_voice(tts, profile, language)
    elif voice_type == "voicevox":
        style = (voice or "").removeprefix("voicevox:")
        if style and not style.isdigit():
            raise InvalidInput(f"A VOICEVOX speaker is a style id number, not {voice!r}.",
                               code="VOICE_UNKNOWN_VOICE",
                               message_ja="VOICEVOX の speaker はスタイル ID（数値）です。")
        if not any(e.name == "voicevox" for e in tts):
            raise BackendUnavailable("VOICEVOX is not among the configured speech engines.",
                                     code="VOICE_SERVICE_UNAVAILABLE",
                                     message_ja="VOICEVOX が設定されていません。", retry_after=30)
        voice = f"voicevox:{style}" if style else None
        chain: FallbackChain = FallbackChain(tts.capability, [tts.get("voicevox")])
    if voice_type != "voicevox":
        chain = language_chain(tts, language, voice)
    request = SpeechRequest(text=text, voice=voice, language=language, speed=opts.speed,
                            pitch=opts.pitch, intonation=opts.intonation, volume=opts.volume,
                            pause=opts.pause)
    progress(0.05, "synthesize")
    started = time.perf_counter()
    try:
        result = chain.run(lambda engine: engine.synthesize(request))
    except ChainExhausted as exc:
        raise _unavailable(exc) from exc
    speech: Speech = result.value
    tts_seconds = time.perf_counter() - started
    report: dict[str, Any] = {**result.report(), "voice": voice, "voice_type": voice_type,
                              "language": language, "method": "tts",
                              "timings": {"tts_s": round(tts_seconds, 3)}}
    if profile is not None and profiles is not None and converters is not None:
        progress(0.6, "convert")
        speech, conversion = convert_to_profile(speech, profile, profiles, converters)
        report["conversion"] = conversion
        report["method"] = conversion["backend"]
        report["profile_id"] = profile["id"]
        report["timings"]["convert_s"] = conversion["duration_s"]
        if conversion["fallback_used"]:
            report["fallback_used"] = True
            report["fallback_method"] = report["fallback_method"] or conversion["backend"]
    report["duration"] = round(speech.audio.duration, 3)
    progress(1.0, "done")
    return speech, report


def normalize_voice_type(voice_type: str | None) -> str:
    aliases = {"builtin": "builtin", "built-in": "builtin", "preset": "builtin",
               "default": "builtin", "standard": "builtin", "kokoro": "builtin",
               "profile": "profile", "custom": "profile", "clone": "profile",
               "cloned": "profile", "openvoice": "profile", "voicevox": "voicevox"}
    key = (voice_type or "builtin").strip().lower()
    if key not in aliases:
        raise InvalidInput(f"Unknown voice_type {voice_type!r}.", code="VOICE_INVALID_VOICE_TYPE",
                           message_ja=f"voice_type {voice_type!r} は不正です。",
                           details={"allowed": ["builtin", "profile", "voicevox"]})
    return aliases[key]


def _profile_source_voice(tts: FallbackChain, profile: dict[str, Any], language: str) -> str | None:
    """The built-in voice voice matching chose for the profile, when it can say ``language``."""
    source = (profile.get("matching") or {}).get("source_voice")
    if not source:
        return None
    try:
        owner = voice_owner(tts, source)
    except InvalidInput:
        return None
    return source if _speaks(owner, language) else None


def convert_to_profile(speech: Speech, profile: dict[str, Any], profiles: ProfileStore,
                       converters: FallbackChain) -> tuple[Speech, dict[str, Any]]:
    """Run the converter chain (OpenVoice when it has weights, else voice matching)."""
    reference = profiles.reference(profile["id"])
    data = dict(profile, embedding_vector=profiles.embedding(profile["id"]).tolist())
    started = time.perf_counter()
    try:
        result = converters.run(lambda c: c.convert(speech.audio, data, reference))
    except ChainExhausted as exc:
        raise _unavailable(exc) from exc
    audio: Audio = result.value
    peak = float(np.max(np.abs(speech.audio.samples))) if speech.audio.duration else 0.0
    samples = normalize_peak(audio.samples, peak) if peak > 0 else audio.samples
    converted = replace(speech, audio=Audio(samples, audio.sample_rate))
    report = {**result.report(), "label": CONVERTER_LABEL.get(result.backend, result.backend),
              "duration_s": round(time.perf_counter() - started, 3)}
    return converted, report


def list_voices(tts: FallbackChain) -> list[dict[str, Any]]:
    """Built-in voices of every configured engine (remote ones only when reachable)."""
    out: list[dict[str, Any]] = []
    for engine in tts:
        ok, why = engine.available()
        row = {"engine": engine.name, "available": ok, "reason": why}
        if not ok or not hasattr(engine, "voices"):
            out.append({**row, "voices": []})
            continue
        try:
            voices: list[VoiceInfo] = engine.voices()
        except Exception as exc:  # noqa: BLE001 - one engine's trouble must not hide the rest
            out.append({**row, "available": False, "reason": f"{exc}", "voices": []})
            continue
        out.append({**row, "voices": [asdict(v) for v in voices]})
    return out


# --------------------------------------------------------------------------- clips


@dataclass
class ClipReport:
    """What a person sees for each uploaded clip: measurements and a verdict."""

    index: int
    filename: str
    duration: float = 0.0
    speech_seconds: float = 0.0
    peak: float = 0.0
    clipped_fraction: float = 0.0
    snr_db: float = 0.0
    snr_after_db: float | None = None
    verdict: str = "ok"  # ok | warning | rejected
    code: str | None = None
    message: str = ""
    message_ja: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _snr_db(samples: np.ndarray, rate: int) -> float:
    """Speech-to-noise estimate: loud frames (95th percentile) over quiet ones (10th)."""
    hop = int(0.02 * rate)
    n = len(samples) // hop
    if n < 10:
        return 0.0
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(rms + 1e-9)
    return float(np.percentile(db, 95) - np.percentile(db, 10))


def _clipped_fraction(samples: np.ndarray) -> float:
    """Share of samples sitting at full scale in runs of 3 or more (a clipped waveform)."""
    hot = np.abs(samples) >= 0.985
    if not hot.any():
        return 0.0
    runs = hot[:-2] & hot[1:-1] & hot[2:]
    return float(runs.sum()) / len(samples)


class _Reject(Exception):
    def __init__(self, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.code, self.message, self.message_ja = code, message, message_ja


def _measure(audio: Audio, report: ClipReport) -> None:
    samples, rate = audio.samples, audio.sample_rate
    report.duration = audio.duration
    report.peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    report.clipped_fraction = _clipped_fraction(samples)
    report.snr_db = _snr_db(samples, rate)
    start, end = voiced_bounds(samples, rate, threshold_db=-35.0)
    report.speech_seconds = (end - start) / rate
    name = report.filename
    if report.duration < CLIP_MIN_S:
        raise _Reject("VOICE_SAMPLE_TOO_SHORT",
                      f"{name}: {report.duration:.1f} s is too short; record {CLIP_MIN_S:.0f}-"
                      f"{CLIP_MAX_S:.0f} s of speech.",
                      f"{name}: {report.duration:.1f} 秒は短すぎます（{CLIP_MIN_S:.0f}〜"
                      f"{CLIP_MAX_S:.0f} 秒で録音してください）。")
    if report.duration > CLIP_MAX_S:
        raise _Reject("VOICE_SAMPLE_TOO_LONG",
                      f"{name}: {report.duration:.1f} s is too long; the limit is "
                      f"{CLIP_MAX_S:.0f} s per clip.",
                      f"{name}: {report.duration:.1f} 秒は長すぎます（1 クリップ "
                      f"{CLIP_MAX_S:.0f} 秒まで）。")
    if report.peak < 0.005 or report.speech_seconds < 0.1:
        raise _Reject("VOICE_SAMPLE_SILENT", f"{name}: the clip is silent.",
                      f"{name}: 音声が無音です。")
    if report.clipped_fraction > 0.002:
        raise _Reject("VOICE_SAMPLE_CLIPPED",
                      f"{name}: {report.clipped_fraction:.1%} of the clip is clipped (too "
                      "loud); record again a little further from the microphone.",
                      f"{name}: 音が割れています（{report.clipped_fraction:.1%}）。"
                      "マイクから少し離れて録音し直してください。")
    if report.clipped_fraction > 0:
        report.warnings.append("a few clipped samples")


def _decode_clip(data: bytes, report: ClipReport) -> Audio:
    """Decode (mono, 24 kHz) and measure; raises ``_Reject`` / ``InvalidInput``."""
    audio = decode_audio(data, area="VOICE_SAMPLE", filename=report.filename)
    _measure(audio, report)
    return audio


def _denoise_clip(audio: Audio, report: ClipReport, denoiser: Any) -> Audio:
    if denoiser is None:
        return audio
    audio = denoiser.denoise(audio)
    report.snr_after_db = _snr_db(audio.samples, audio.sample_rate)
    return audio


def _finish_clip(audio: Audio, report: ClipReport) -> Audio:
    """Trim and judge the (denoised) clip; raises ``_Reject``."""
    cleaned = trim(audio.samples, audio.sample_rate, pad_s=0.1)
    start, end = voiced_bounds(cleaned, audio.sample_rate, threshold_db=-35.0)
    report.speech_seconds = (end - start) / audio.sample_rate
    best_snr = max(report.snr_db, report.snr_after_db or 0.0)
    if best_snr < 12.0:
        raise _Reject("VOICE_SAMPLE_TOO_NOISY",
                      f"{report.filename}: too noisy (speech only {best_snr:.0f} dB above "
                      "the noise even after denoising); record somewhere quieter.",
                      f"{report.filename}: 雑音が多すぎます（ノイズ除去後も {best_snr:.0f} dB）。"
                      "静かな場所で録音してください。")
    if report.speech_seconds < MIN_SPEECH_S:
        raise _Reject("VOICE_SAMPLE_TOO_SHORT",
                      f"{report.filename}: only {report.speech_seconds:.1f} s of speech; "
                      f"speak for at least {CLIP_MIN_S:.0f} s.",
                      f"{report.filename}: 話している部分が {report.speech_seconds:.1f} 秒しか"
                      f"ありません（{CLIP_MIN_S:.0f} 秒以上話してください）。")
    if report.snr_db < 20.0:
        report.warnings.append("background noise (denoised)")
    if report.warnings:
        report.verdict = "warning"
    return Audio(cleaned, audio.sample_rate)


def _rejected(report: ClipReport, exc: Exception) -> None:
    if isinstance(exc, _Reject):
        report.verdict, report.code = "rejected", exc.code
        report.message, report.message_ja = exc.message, exc.message_ja
    elif isinstance(exc, InvalidInput):
        report.verdict, report.code = "rejected", exc.code
        report.message, report.message_ja = exc.message, exc.message_ja or exc.message
    else:
        raise exc


def check_clip(data: bytes, filename: str, index: int = 0,
               denoiser: Any = None) -> tuple[Audio | None, ClipReport]:
    """Decode, measure, denoise and trim one clip. Never raises for a bad clip: the report
    says ``rejected`` with its ``VOICE_SAMPLE_*`` code (the UI shows each clip's verdict)."""
    report = ClipReport(index=index, filename=filename or f"clip {index + 1}")
    try:
        audio = _decode_clip(data, report)
        return _finish_clip(_denoise_clip(audio, report, denoiser), report), report
    except (_Reject, InvalidInput) as exc:
        _rejected(report, exc)
    return None, report


# ------------------------------------------------------------------------- profiles


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(profile_id: str) -> NotFound:
    return NotFound(f"No voice profile {profile_id!r}.", code="VOICE_PROFILE_NOT_FOUND",
                    message_ja=f"ボイスプロファイル {profile_id!r} はありません。",
                    details={"profile_id": profile_id})


def validate_name(name: str | None) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned or len(cleaned) > NAME_MAX:
        raise InvalidInput(f"A profile name needs 1-{NAME_MAX} characters.",
                           code="VOICE_PROFILE_NAME_INVALID",
                           message_ja=f"プロファイル名は 1〜{NAME_MAX} 文字にしてください。",
                           details={"max_chars": NAME_MAX})
    return cleaned


OwnerCheck = Callable[[str | None], bool]
"""Whether the caller may see a record with this ``owner`` (None: made with auth off)."""


class ProfileStore:
    """Voice profiles in storage; ``profile.json`` is the commit marker.

    ``profile.json`` carries the ``owner`` (a user id) when the profile was made by a signed-in
    user. A store made by :meth:`scoped` shows only what its ``can_see`` allows: someone
    else's profile reads as ``VOICE_PROFILE_NOT_FOUND`` for every operation."""

    def __init__(self, storage: ProfileStorage, can_see: OwnerCheck | None = None) -> None:
        self.storage = storage
        self.can_see = can_see

    def scoped(self, can_see: OwnerCheck | None) -> ProfileStore:
        """The same profiles, seen by one caller (``None``: everything, e.g. an admin)."""
        return ProfileStore(self.storage, can_see)

    @staticmethod
    def key(profile_id: str, name: str) -> str:
        return f"{PROFILE_ROOT}/{profile_id}/{name}"

    def _check_id(self, profile_id: str) -> str:
        if not PROFILE_ID.match(profile_id or ""):
            raise _not_found(profile_id)
        return profile_id

    def new_id(self) -> str:
        while True:
            candidate = f"openvoice_{secrets.token_hex(4)}"
            if not self.storage.exists(self.key(candidate, "profile.json")):
                return candidate

    def save(self, profile: dict[str, Any], reference: Audio, embedding: np.ndarray) -> dict:
        pid = self._check_id(profile["id"])
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(embedding, np.float32))
        self.storage.put(self.key(pid, "reference.wav"), encode_wav(reference))
        self.storage.put(self.key(pid, "embedding.npy"), buffer.getvalue())
        self._write(profile)  # last: only now does the profile exist
        return profile

    def _write(self, profile: dict[str, Any]) -> None:
        self.storage.put(self.key(profile["id"], "profile.json"),
                         json.dumps(profile, ensure_ascii=False, indent=2).encode())

    def get(self, profile_id: str) -> dict[str, Any]:
        pid = self._check_id(profile_id)
        try:
            profile = json.loads(self.storage.get(self.key(pid, "profile.json")))
        except NotFound:
            raise _not_found(profile_id) from None
        except ValueError:
            raise _not_found(profile_id) from None
        if not isinstance(profile, dict) or (
                self.can_see is not None and not self.can_see(profile.get("owner"))):
            raise _not_found(profile_id)
        return dict(profile)

    def list(self) -> list[dict[str, Any]]:
        profiles = []
        for item in self.storage.list(PROFILE_ROOT + "/"):
            parts = item.key.split("/")
            if len(parts) != 4 or parts[3] != "profile.json" or not PROFILE_ID.match(parts[2]):
                continue
            try:
                profile = self.get(parts[2])
            except NotFound:
                continue  # deleted between listing and reading
            if not self.storage.exists(self.key(parts[2], "embedding.npy")):
                continue
            profiles.append(profile)
        return sorted(profiles, key=lambda p: p.get("created_at", ""), reverse=True)

    def reference(self, profile_id: str) -> Audio:
        if self.can_see is not None:
            self.get(profile_id)
        data = self.storage.get(self.key(self._check_id(profile_id), "reference.wav"))
        return decode_audio(data, area="VOICE_PROFILE")

    def embedding(self, profile_id: str) -> np.ndarray:
        if self.can_see is not None:
            self.get(profile_id)
        data = self.storage.get(self.key(self._check_id(profile_id), "embedding.npy"))
        return np.load(io.BytesIO(data)).astype(np.float32)

    def rename(self, profile_id: str, name: str) -> dict[str, Any]:
        profile = self.get(profile_id)
        profile["name"] = validate_name(name)
        profile["updated_at"] = _now()
        self._write(profile)
        return profile

    def update(self, profile_id: str, **fields: Any) -> dict[str, Any]:
        profile = self.get(profile_id)
        profile.update(fields, updated_at=_now())
        self._write(profile)
        return profile

    def delete(self, profile_id: str) -> None:
        pid = self._check_id(profile_id)
        if not self.storage.exists(self.key(pid, "profile.json")):
            raise _not_found(profile_id)
        if self.can_see is not None:
            self.get(pid)  # someone else's profile: not found
        self.storage.delete(self.key(pid, "profile.json"))  # first: it vanishes from lists
        for name in ("embedding.npy", "reference.wav", *EVOLVED_FILES):
            self.storage.delete(self.key(pid, name))

    def discard(self, profile_id: str) -> None:
        """Remove whatever a failed or cancelled creation of ``profile_id`` wrote."""
        pid = self._check_id(profile_id)
        for name in ("profile.json", "embedding.npy", "reference.wav", *EVOLVED_FILES):
            self.storage.delete(self.key(pid, name))


def public_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as the API shows it (``id`` and ``profile_id`` both, as the seed lists)."""
    out = {k: v for k, v in profile.items() if k != "embedding_vector"}
    out["profile_id"] = profile["id"]
    return out


def _reference_from(clips: Sequence[Audio]) -> Audio:
    rate = clips[0].sample_rate
    gap = np.zeros(int(0.3 * rate), np.float32)
    pieces: list[np.ndarray] = []
    total = 0
    for clip in clips:
        if total >= REFERENCE_MAX_S * rate:
            break
        pieces.extend([clip.samples, gap])
        total += len(clip.samples) + len(gap)
    samples = np.concatenate(pieces[:-1])[: int(REFERENCE_MAX_S * rate)]
    return Audio(normalize_peak(samples), rate)


PROFILE_STEPS = ("decode", "denoise", "checks", "embedding", "matching search", "save")
"""The steps of making a profile, as the job and the Voice tab show them."""
_STEP_SPAN = {"decode": (0.0, 0.05), "denoise": (0.05, 0.5), "checks": (0.5, 0.55),
              "embedding": (0.55, 0.62), "matching search": (0.62, 0.97), "save": (0.97, 1.0)}
"""Each step's share of the progress bar (measured: denoising and the search dominate)."""


def _step_progress(progress: ProgressFn, step: str, fraction: float = 0.0) -> None:
    low, high = _STEP_SPAN[step]
    progress(low + (high - low) * fraction, step)


def _reject_first(reports: Sequence[ClipReport]) -> None:
    rejected = [r for r in reports if r.verdict == "rejected"]
    if rejected:
        first = rejected[0]
        raise InvalidInput(first.message, code=first.code or "VOICE_SAMPLE_INVALID",
                           message_ja=first.message_ja,
                           details={"clip": first.index, "filename": first.filename,
                                    "clips": [r.as_dict() for r in reports]})


def validate_profile_request(clips: Sequence[Any], name: str, language: str) -> str:
    """The checks that need no audio work (done before a job is queued); the clean name."""
    name = validate_name(name)
    if language not in LANGUAGES:
        raise InvalidInput(f"Unsupported language {language!r}.", code="VOICE_INVALID_LANGUAGE",
                           message_ja=f"未対応の言語 {language!r} です。",
                           details={"allowed": list(LANGUAGES)})
    if not 1 <= len(clips) <= MAX_CLIPS:
        raise InvalidInput(f"Give 1-{MAX_CLIPS} recordings (3 recommended); got {len(clips)}.",
                           code="VOICE_SAMPLE_COUNT",
                           message_ja=f"録音は 1〜{MAX_CLIPS} 個にしてください（推奨 3 個）。",
                           details={"count": len(clips), "max": MAX_CLIPS})
    return name


def create_profile(
    clips: Sequence[tuple[bytes, str]],
    *,
    name: str,
    language: str = "ja",
    store: ProfileStore,
    encoder: FallbackChain,
    denoiser: Any = None,
    tts: FallbackChain | None = None,
    matcher: Any = None,
    progress: ProgressFn = no_progress,
    owner: str | None = None,
    profile_id: str | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """1-5 recordings (bytes, filename) -> a stored profile, in the steps of
    :data:`PROFILE_STEPS` (``progress`` gets each step's name). Each clip is decoded, made
    mono 24 kHz, denoised, trimmed and checked; the first bad clip raises its
    ``VOICE_SAMPLE_*`` error (``details.clips`` has every clip's report). With ``tts`` and
    ``matcher`` the profile is calibrated for voice matching (nearest built-in voice and
    Praat parameters, chosen by measured similarity; what does not depend on the new voice
    is cached under ``cache_dir``). ``profile_id`` (a job's own) makes a rerun overwrite
    rather than duplicate; nothing is listed until every file is written."""
    name = validate_profile_request(clips, name, language)
    reports = [ClipReport(index=i, filename=f or f"clip {i + 1}") for i, (_, f) in enumerate(clips)]
    audios: list[Audio | None] = [None] * len(clips)
    for index, (data, _) in enumerate(clips):
        _step_progress(progress, "decode", index / len(clips))
        try:
            audios[index] = _decode_clip(data, reports[index])
        except (_Reject, InvalidInput) as exc:
            _rejected(reports[index], exc)
    _reject_first(reports)
    # Clips are denoised side by side (one thread per core): the C denoiser releases the GIL.
    _step_progress(progress, "denoise")
    workers = max(1, min(len(clips), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers, thread_name_prefix="denoise") as pool:
        futures = {pool.submit(_denoise_clip, audio, reports[i], denoiser): i
                   for i, audio in enumerate(audios) if audio is not None}
        try:
            for count, future in enumerate(as_completed(futures), 1):
                audios[futures[future]] = future.result()
                _step_progress(progress, "denoise", count / len(clips))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    _step_progress(progress, "checks")
    for index, audio in enumerate(audios):
        assert audio is not None
        try:
            audios[index] = _finish_clip(audio, reports[index])
        except _Reject as exc:
            _rejected(reports[index], exc)
    _reject_first(reports)
    cleaned = [a for a in audios if a is not None]
    _step_progress(progress, "embedding")
    try:
        embedded = encoder.run(lambda e: e.embed(cleaned))
    except ChainExhausted as exc:
        raise _unavailable(exc) from exc
    embedding = np.asarray(embedded.value, np.float32)
    reference = _reference_from(cleaned)
    profile: dict[str, Any] = {
        "id": profile_id or store.new_id(),
        "name": name,
        "language": language,
        "created_at": _now(),
        "updated_at": _now(),
        "engine": "openvoice",
        "encoder": embedded.backend,
        "embedding_dim": int(embedding.shape[0]),
        "denoised": denoiser is not None,
        "sample_stats": {
            "count": len(cleaned),
            "total_seconds": round(sum(a.duration for a in cleaned), 2),
            "reference_seconds": round(reference.duration, 2),
            "clips": [r.as_dict() for r in reports],
        },
        "matching": None,
    }
    if owner is not None:
        profile["owner"] = owner
    if tts is not None and matcher is not None:
        _step_progress(progress, "matching search")
        profile["matching"] = calibrate_matching(tts, matcher, embedding, reference, language,
                                                 cache_dir=cache_dir)
    _step_progress(progress, "save")
    store.save(profile, reference, embedding)
    progress(1.0, "save")
    return profile


class CalibrationCache:
    """The part of voice-matching calibration that does not depend on the new voice: each
    built-in voice (and each blend used so far) saying the calibration sentence, with its
    speaker embedding. Kept in memory and, with a ``cache_dir``, as ``.npz`` files under
    ``{cache_dir}/voice_matching/`` so a fresh process (or the first profile after an
    install that ran :func:`prepare_calibration`) pays nothing for them."""

    _memory: ClassVar[dict[str, tuple[Audio, np.ndarray]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, cache_dir: Path | None) -> None:
        self.root = Path(cache_dir) / "voice_matching" if cache_dir is not None else None

    @staticmethod
    def key(engine: str, voice: str, language: str, encoder: str) -> str:
        digest = hashlib.sha1(f"{CALIBRATION_TEXT[language]}|{encoder}|{voice}".encode())
        return f"{engine}-{language}-{digest.hexdigest()[:16]}"

    def get(self, key: str, say: Callable[[], Audio],
            embed: Callable[[Audio], np.ndarray]) -> tuple[Audio, np.ndarray]:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        path = self.root / f"{key}.npz" if self.root is not None else None
        item: tuple[Audio, np.ndarray] | None = None
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    item = (Audio(data["samples"].astype(np.float32), int(data["rate"])),
                            data["embedding"].astype(np.float32))
            except (OSError, ValueError, KeyError):
                item = None  # a torn or foreign file: make it again
        if item is None:
            audio = say()
            item = (audio, np.asarray(embed(audio), np.float32))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
                with tmp.open("wb") as handle:
                    np.savez(handle, samples=item[0].samples, rate=item[0].sample_rate,
                             embedding=item[1])
                tmp.replace(path)  # atomic: a reader sees the whole file or none
        with self._lock:
            self._memory[key] = item
        return item


def _calibration_voices(tts: FallbackChain, language: str) -> Iterator[tuple[Any, VoiceInfo]]:
    for engine in tts:
        if engine.name == "voicevox" or not _speaks(engine, language):
            continue
        if not engine.available()[0]:
            continue
        for info in getattr(engine, "VOICES", ()):
            if info.language == language:
                yield engine, info


def prepare_calibration(tts: FallbackChain, matcher: Any, cache_dir: Path | None,
                        languages: Sequence[str] = LANGUAGES) -> int:
    """Fill the calibration cache ahead of the first profile (at install or start-up).
    Returns how many voices are cached."""
    cache = CalibrationCache(cache_dir)
    count = 0
    for language in languages:
        for engine, info in _calibration_voices(tts, language):
            key = cache.key(engine.name, info.id, language, getattr(matcher, "encoder_name", ""))
            cache.get(key, lambda e=engine, i=info.id, lang=language: e.synthesize(
                SpeechRequest(CALIBRATION_TEXT[lang], voice=i, language=lang)).audio,
                matcher.embed)
            count += 1
    return count


def calibrate_matching(tts: FallbackChain, matcher: Any, embedding: np.ndarray,
                       reference: Audio, language: str,
                       cache_dir: Path | None = None) -> dict[str, Any] | None:
    """Say a calibration sentence with each built-in voice of the language (and a blend of
    the two nearest Kokoro voices), and let the matcher choose voice and parameters. The
    voices' audio and embeddings come from :class:`CalibrationCache`."""
    text = CALIBRATION_TEXT[language]
    cache = CalibrationCache(cache_dir)
    encoder = getattr(matcher, "encoder_name", "")
    candidates: list[tuple[str, Audio]] = []
    embeddings: dict[str, np.ndarray] = {}
    kokoro = None
    default_voice = None
    for engine, info in _calibration_voices(tts, language):
        default_voice = default_voice or info.id
        audio, vector = cache.get(
            cache.key(engine.name, info.id, language, encoder),
            lambda e=engine, i=info.id: e.synthesize(
                SpeechRequest(text, voice=i, language=language)).audio,
            matcher.embed)
        candidates.append((info.id, audio))
        embeddings[info.id] = vector
        if engine.name == "kokoro":
            kokoro = engine
    if not candidates:
        return None

    def blend(weights: Sequence[tuple[str, float]]) -> tuple[str, Audio] | None:
        ids = {v.id for v in getattr(kokoro, "VOICES", ())}
        if kokoro is None or not all(v in ids for v, _ in weights):
            return None
        voice = "+".join(f"{v}:{w:g}" for v, w in weights)
        audio, vector = cache.get(
            cache.key("kokoro", voice, language, encoder),
            lambda: kokoro.synthesize(SpeechRequest(text, voice=voice, language=language)).audio,
            matcher.embed)
        embeddings[voice] = vector
        return voice, audio

    return dict(matcher.calibrate(embedding, reference, candidates, blend=blend,
                                  default_voice=default_voice, embeddings=embeddings))


# ------------------------------------------------------------------------- bundle


@dataclass
class VoiceKit:
    """Everything the voice pipeline needs, in one value (built by the app from Services):
    ``synthesize`` and ``create_profile`` with the chains already filled in."""

    tts: FallbackChain
    encoder: FallbackChain
    converters: FallbackChain
    store: ProfileStore
    cache_dir: Path | None = None
    _denoiser: Any = None

    def denoiser(self) -> Any:
        if self._denoiser is None:
            from models.voice.denoise import DeepFilterDenoiser

            denoiser = DeepFilterDenoiser()
            self._denoiser = denoiser if denoiser.available()[0] else False
        return self._denoiser or None

    def matcher(self) -> Any:
        for engine in self.converters:
            if engine.name == "voice_matching" and engine.available()[0]:
                return engine
        return None

    def synthesize(self, text: str, *, profiles: ProfileStore | None = None,
                   **kw: Any) -> tuple[Speech, dict[str, Any]]:
        """``profiles``: the caller's view of the store (:meth:`ProfileStore.scoped`)."""
        return synthesize(text, tts=self.tts, profiles=profiles or self.store,
                          converters=self.converters, **kw)

    def create_profile(self, clips: Sequence[tuple[bytes, str]], **kw: Any) -> dict[str, Any]:
        """``owner=`` stamps the profile with its user id (auth on)."""
        kw.setdefault("tts", self.tts)
        kw.setdefault("matcher", self.matcher())
        kw.setdefault("cache_dir", self.cache_dir)
        return create_profile(clips, store=self.store, encoder=self.encoder,
                              denoiser=self.denoiser(), **kw)
