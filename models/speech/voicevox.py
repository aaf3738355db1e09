"""VOICEVOX engine over HTTP: the remote fallback for Japanese speech.

Protocol (VOICEVOX engine, default port 50021): ``GET /version``, ``GET /speakers``,
``POST /audio_query?text=&speaker=`` -> AudioQuery JSON, ``POST /synthesis?speaker=`` with
the (edited) AudioQuery -> ``audio/wav``. The studio's options map onto AudioQuery fields:

    speed      -> speedScale            (0.5-2, same meaning)
    pitch      -> pitchScale            (semitones -> the engine's log-F0 scale, see below)
    intonation -> intonationScale       (0-2, same meaning)
    volume     -> volumeScale           (0-2, same meaning)
    pause      -> pauseLengthScale      (scales the engine's own punctuation pauses)

Connection errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter
(tenacity; a 429's ``Retry-After`` is honoured up to ``MAX_RETRY_AFTER`` s); a malformed
JSON answer is a transient failure too; a 422 or 500 naming a style id that the engine no longer has triggers one
``/speakers`` refresh. When the engine still cannot answer, the error is a
:class:`TransientBackendError` (HTTP 503 with ``retry_after``), so a chain moves on.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from models.base import Audio, EngineSettings, Speech, SpeechRequest, Timing, VoiceInfo
from models.errors import BackendFailed, BackendUnavailable, InvalidInput, TransientBackendError
from models.speech.dsp import join, resample_array, trim_bounds
from models.speech.text import sentence_texts, split_units

OUTPUT_RATE = 24000
VOICE_PREFIX = "voicevox:"
TYPICAL_LOG_F0 = 5.5  # VOICEVOX mora pitch is ln(F0); ~245 Hz is a typical value
HEALTH_TTL = 10.0
MAX_RETRY_AFTER = 20.0


def semitones_to_pitch_scale(semitones: float) -> float:
    """VOICEVOX multiplies each mora's ln(F0) by ``2**pitchScale``; choose the scale that
    moves a typical voice by ``semitones`` (+12 -> 0.171, -12 -> -0.194; the editor's
    -0.15..0.15 slider is a little under an octave either way)."""
    return math.log2(1.0 + semitones * math.log(2) / 12.0 / TYPICAL_LOG_F0)


class _Retryable(Exception):
    """A failure worth another try (connection error, timeout, 5xx)."""

    def __init__(self, reason: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


class _StaleStyle(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


class VoicevoxSpeech:
    """A VOICEVOX engine at ``settings.voicevox_url`` (``STUDIO_VOICEVOX_URL``)."""

    name = "voicevox"
    languages = ("ja",)
    style_service = True

    def __init__(self, settings: EngineSettings, client: httpx.Client | None = None,
                 attempts: int = 4, backoff: float = 0.25, max_backoff: float = 4.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.url = (settings.voicevox_url or "").rstrip("/")
        timeout = httpx.Timeout(settings.request_timeout, connect=min(5.0, settings.request_timeout))
        self._client = client or httpx.Client(base_url=self.url, timeout=timeout)
        self._owns_client = client is None
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self._speakers: list[dict[str, Any]] | None = None
        self._health: tuple[float, bool, str] | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- transport
    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One HTTP call with retries on transient failures; 4xx come back as responses."""

        def once() -> httpx.Response:
            try:
                response = self._client.request(method, path, **kw)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            status = response.status_code
            # a 500 naming a speaker may mean a stale style id (older engines): the caller
            # refreshes /speakers instead of hammering the same request
            maybe_stale = status == 500 and "speaker" in kw.get("params", {})
            if status >= 500 and not maybe_stale:
                raise _Retryable(f"HTTP {status}", status)
            if status == 429:  # a proxy in front of the engine is shedding load
                raise _Retryable("HTTP 429", status, _retry_after(response))
            return response

        jitter = wait_exponential_jitter(initial=self.backoff, max=self.max_backoff,
                                         jitter=self.backoff)

        def wait(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = getattr(exc, "retry_after", None)
            base = jitter(state)
            return min(max(base, hinted), MAX_RETRY_AFTER) if hinted is not None else base

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            reraise=False,
            sleep=self.sleep,
        )
        try:
            return retrying(once)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise TransientBackendError(
                f"The VOICEVOX engine at {self.url} did not answer {path} after "
                f"{self.attempts} tries ({last}).",
                code="VOICE_SERVICE_UNAVAILABLE",
                message_ja=f"VOICEVOX エンジン（{self.url}）が応答しません（{last}）。",
                details={"engine": self.name, "url": self.url, "path": path,
                         "attempts": self.attempts},
                retry_after=30,
            ) from exc

    # ------------------------------------------------------------------ engine
    def available(self) -> tuple[bool, str]:
        if not self.url:
            return False, "STUDIO_VOICEVOX_URL is not set"
        now = time.monotonic()
        if self._health and now - self._health[0] < HEALTH_TTL:
            return self._health[1], self._health[2]
        try:
            response = self._client.get("/version", timeout=2.0)
            ok = response.status_code == 200
            why = f"VOICEVOX {response.json()} at {self.url}" if ok else \
                f"{self.url}/version answered HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            ok, why = False, f"VOICEVOX at {self.url} unreachable: {type(exc).__name__}"
        self._health = (now, ok, why)
        return ok, why

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def version(self) -> str:
        response = self._request("GET", "/version")
        self._check(response, "/version")
        return str(self._json(response, "/version"))

    def speakers(self, refresh: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            if self._speakers is None or refresh:
                response = self._request("GET", "/speakers")
                self._check(response, "/speakers")
                speakers = self._json(response, "/speakers")
                if not isinstance(speakers, list) or not all(
                        isinstance(sp, dict) and isinstance(sp.get("styles", []), list)
                        and all(isinstance(st, dict) and isinstance(st.get("id"), int)
                                for st in sp.get("styles", []))
                        for sp in speakers):
                    raise self._malformed("/speakers")
                self._speakers = speakers
            return self._speakers

    def style_ids(self) -> list[int]:
        return [int(s["id"]) for sp in self.speakers() for s in sp.get("styles", [])]

    def voices(self) -> list[VoiceInfo]:
        out = []
        for speaker in self.speakers():
            for style in speaker.get("styles", []):
                if style.get("type", "talk") != "talk":
                    continue
                out.append(VoiceInfo(f"{VOICE_PREFIX}{style['id']}",
                                     f"{speaker.get('name', '?')} ({style.get('name', style['id'])})", "ja", "unknown",
                                     self.name))
        return out

    def owns(self, voice: str) -> bool:
        """Never: VOICEVOX is addressed by style id, never by a built-in voice id."""
        return False

    def _malformed(self, path: str) -> TransientBackendError:
        return TransientBackendError(
            f"The VOICEVOX engine at {self.url} answered {path} with malformed JSON.",
            code="VOICE_SERVICE_UNAVAILABLE",
            message_ja=f"VOICEVOX エンジンの {path} の応答が不正な JSON です。",
            details={"engine": self.name, "path": path}, retry_after=30)

    def _json(self, response: httpx.Response, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._malformed(path) from None

    def _check(self, response: httpx.Response, path: str) -> None:
        if response.status_code >= 400:
            raise BackendFailed(
                f"VOICEVOX {path} answered HTTP {response.status_code}: {response.text[:200]}",
                code="VOICE_SYNTHESIS_FAILED",
                message_ja=f"VOICEVOX {path} がエラー {response.status_code} を返しました。",
                details={"engine": self.name, "status": response.status_code})

    # -------------------------------------------------------------- synthesis
    def parse_style(self, voice: str | None) -> int | None:
        if voice is None:
            return None
        raw = voice.removeprefix(VOICE_PREFIX)
        if not raw.isdigit():
            return None  # another engine's voice: this engine's default
        return int(raw)

    def _default_style(self) -> int:
        ids = self.style_ids()
        if not ids:
            raise BackendUnavailable("The VOICEVOX engine lists no speakers.",
                                     code="VOICE_SERVICE_UNAVAILABLE",
                                     message_ja="VOICEVOX エンジンに話者がいません。",
                                     retry_after=30)
        return ids[0]

    def _unknown_style(self, style: int) -> InvalidInput:
        return InvalidInput(f"VOICEVOX has no style id {style}.", code="VOICE_UNKNOWN_VOICE",
                            message_ja=f"VOICEVOX にスタイル ID {style} はありません。",
                            details={"speaker": style, "available": self.style_ids()[:50]})

    def _query(self, text: str, style: int) -> dict[str, Any]:
        response = self._request("POST", "/audio_query",
                                 params={"text": text, "speaker": style})
        if response.status_code in (422, 500):
            raise _StaleStyle(response.status_code, response.text)
        self._check(response, "/audio_query")
        query = self._json(response, "/audio_query")
        if not isinstance(query, dict):
            raise self._malformed("/audio_query")
        return query

    def _synthesis(self, query: dict[str, Any], style: int) -> bytes:
        response = self._request("POST", "/synthesis", params={"speaker": style}, json=query)
        if response.status_code in (422, 500):
            raise _StaleStyle(response.status_code, response.text)
        self._check(response, "/synthesis")
        return response.content

    def edit_query(self, query: dict[str, Any], request: SpeechRequest) -> dict[str, Any]:
        """Map the studio's options onto AudioQuery fields."""
        query = dict(query)
        query["speedScale"] = float(request.speed)
        query["pitchScale"] = semitones_to_pitch_scale(request.pitch)
        query["intonationScale"] = float(request.intonation)
        query["volumeScale"] = float(request.volume)
        query["pauseLengthScale"] = float(request.pause)
        query["prePhonemeLength"] = 0.05
        query["postPhonemeLength"] = 0.05
        query["outputSamplingRate"] = OUTPUT_RATE
        query["outputStereo"] = False
        return query

    def _say(self, text: str, style: int, request: SpeechRequest
             ) -> tuple[np.ndarray, tuple[Timing, ...]]:
        query = self.edit_query(self._query(text, style), request)
        return _decode_wav(self._synthesis(query, style)), mora_timings(query)

    def synthesize(self, request: SpeechRequest) -> Speech:
        if request.language != "ja":
            raise BackendUnavailable("VOICEVOX speaks Japanese only.",
                                     code="VOICE_LANGUAGE_UNSUPPORTED",
                                     message_ja="VOICEVOX は日本語のみです。")
        asked = self.parse_style(request.voice)
        style = asked if asked is not None else self._default_style()
        # one request per sentence: bounded requests, and sentence timings for prosody
        units = split_units(request.text.strip(), pause=request.pause)
        sentences: dict[int, list[str]] = {}
        for unit in units:
            sentences.setdefault(unit.sentence, []).append(unit.text + unit.end)
        texts = ["".join(parts) for parts in sentences.values()] or [request.text.strip()]
        pieces = []
        moras: list[tuple[Timing, ...]] = []
        for k, text in enumerate(texts):
            try:
                samples, said_timing = self._say(text, style, request)
            except _StaleStyle as exc:
                # the style id may be stale: refresh /speakers once and decide
                known = self.speakers(refresh=True)
                ids = [int(s["id"]) for sp in known for s in sp.get("styles", [])]
                if style in ids and exc.status == 422:
                    raise BackendFailed(f"VOICEVOX refused the query: {exc}",
                                        code="VOICE_SYNTHESIS_FAILED",
                                        message_ja="VOICEVOX が合成を拒否しました。") from exc
                if style not in ids:
                    if asked is not None:
                        raise self._unknown_style(style) from exc
                    style = self._default_style()
                try:
                    samples, said_timing = self._say(text, style, request)
                except _StaleStyle as again:
                    raise TransientBackendError(
                        f"VOICEVOX failed twice for style {style}: {again}",
                        code="VOICE_SERVICE_UNAVAILABLE",
                        message_ja="VOICEVOX が合成に失敗しました。", retry_after=30) from again
            gap = 0.5 * request.pause if k < len(texts) - 1 else 0.0
            pieces.append((samples, gap))
            moras.append(said_timing)
        audio, spans = join(pieces, OUTPUT_RATE)
        written = sentence_texts(request.text)
        said = written if len(written) == len(texts) else texts
        timings = tuple(Timing(s, e, t) for (s, e), t in zip(spans, said, strict=True))
        phonemes: list[Timing] = []
        for (samples, _), (start, end), timing in zip(pieces, spans, moras, strict=True):
            cut = trim_bounds(samples, OUTPUT_RATE)[0] / OUTPUT_RATE  # what join trimmed
            for ph in timing:
                a, b = max(start, start + ph.start - cut), min(end, start + ph.end - cut)
                if b > a:
                    phonemes.append(Timing(round(a, 4), round(b, 4), ph.text))
        return Speech(Audio(audio, OUTPUT_RATE), sentences=timings, phonemes=tuple(phonemes))


def mora_timings(query: dict[str, Any]) -> tuple[Timing, ...]:
    """Each consonant and vowel of an AudioQuery with its time in the synthesized audio:
    the engine says ``prePhonemeLength``, then every mora's ``consonant_length`` and
    ``vowel_length`` and each accent phrase's ``pause_mora`` (scaled by
    ``pauseLengthScale``), all divided by ``speedScale``. Symbols as the engine spells them
    (``k``, ``sh``, ``a``, devoiced ``U``, ``N``, ``cl``): what lip-sync reads."""
    try:
        speed = float(query.get("speedScale") or 1.0) or 1.0
        pause_scale = float(query.get("pauseLengthScale") or 1.0)
        t = float(query.get("prePhonemeLength") or 0.0) / speed
        out: list[Timing] = []
        for phrase in query.get("accent_phrases") or []:
            for mora in phrase.get("moras") or []:
                if mora.get("consonant"):
                    d = float(mora.get("consonant_length") or 0.0) / speed
                    out.append(Timing(t, t + d, str(mora["consonant"])))
                    t += d
                d = float(mora.get("vowel_length") or 0.0) / speed
                out.append(Timing(t, t + d, str(mora.get("vowel") or "")))
                t += d
            pause = phrase.get("pause_mora")
            if pause:
                t += float(pause.get("vowel_length") or 0.0) * pause_scale / speed
    except (TypeError, ValueError, AttributeError):  # an engine's odd query: no timing
        return ()
    return tuple(ph for ph in out if ph.end > ph.start and ph.text not in ("", "pau"))


def wav_truncated(data: bytes) -> bool:
    """Whether a RIFF/WAVE body stops before the end its ``data`` chunk declares (a cut
    connection or a broken proxy). An unknown size (0 or 0xFFFFFFFF, streamed WAVs) is not
    judged."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"data":
            return size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return pos != len(data)  # cut inside the chunk headers


def _decode_wav(data: bytes) -> np.ndarray:
    import soundfile as sf

    if wav_truncated(data):
        raise TransientBackendError("VOICEVOX returned a truncated WAV file.",
                                    code="VOICE_SERVICE_UNAVAILABLE",
                                    message_ja="VOICEVOX の音声データが途中で切れています。",
                                    details={"bytes": len(data)}, retry_after=30)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # a bad body from the engine
        raise TransientBackendError("VOICEVOX returned audio that is not a WAV file.",
                                    code="VOICE_SERVICE_UNAVAILABLE",
                                    message_ja="VOICEVOX の応答が WAV ではありません。",
                                    retry_after=30) from exc
    return resample_array(samples.mean(axis=1), int(rate), OUTPUT_RATE)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
