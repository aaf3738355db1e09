"""The shared body of the local speech engines (Kokoro, Piper, OpenJTalk).

Each engine only says how to turn one short unit of text into samples; this class does the
rest the same way for all of them: normalise, split at punctuation, synthesize unit by unit,
join with exact pauses and click-free fades, then pitch, intonation and volume, at 24 kHz.

Units are independent, so an engine whose inference releases the GIL (Kokoro's ONNX
session) sets ``unit_workers`` and its units run side by side: on this 2-core machine two
single-clause runs use the cores better than one run split over two threads (~30% less
CPU per second of speech). Engines that know when each phoneme is said return that timing
from :meth:`LocalSpeech._unit_timed`; it follows each unit through the trim and the join
into ``Speech.phonemes`` (what lip-sync uses).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from models.base import Audio, EngineSettings, Speech, SpeechRequest, Timing, VoiceInfo
from models.errors import BackendFailed, BackendUnavailable, StudioError
from models.speech.dsp import (
    apply_volume,
    change_pitch,
    join,
    normalize_peak,
    resample_array,
    trim_bounds,
)
from models.speech.text import Unit, normalize_en, normalize_ja, sentence_texts, split_units

OUTPUT_RATE = 24000
UnitAudio = tuple[np.ndarray, int, tuple[Timing, ...]]
"""One unit's samples, their rate and the phonemes said in them (seconds from the unit's
first sample; empty when the engine does not know)."""


class LocalSpeech:
    """Base for engines that synthesize in-process. Subclasses set ``name``, ``VOICES`` and
    implement :meth:`_load` (cheap to call again) and :meth:`_unit`, or :meth:`_unit_timed`
    when they also know the phonemes' timing."""

    name = "local"
    VOICES: tuple[VoiceInfo, ...] = ()
    style_service = False
    unit_workers = 1
    """How many units may be synthesized at once (1: the engine is not thread-safe)."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    # -- what subclasses provide
    def _unit(self, text: str, end: str, voice: str, speed: float,
              language: str) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _unit_timed(self, text: str, end: str, voice: str, speed: float,
                    language: str) -> UnitAudio:
        samples, rate = self._unit(text, end, voice, speed, language)
        return samples, rate, ()

    # -- the protocol
    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({v.language for v in self.VOICES}))

    def voices(self) -> list[VoiceInfo]:
        return list(self.VOICES)

    def owns(self, voice: str) -> bool:
        return any(v.id == voice for v in self.VOICES)

    def default_voice(self, language: str) -> str:
        for voice in self.VOICES:
            if voice.language == language:
                return voice.id
        return self.VOICES[0].id

    def resolve_voice(self, voice: str | None, language: str) -> str:
        """The engine's own id for ``voice``; its default for the language when the voice
        belongs to another engine (the chain fell through to this one)."""
        ids = {v.id for v in self.VOICES}
        return voice if voice in ids else self.default_voice(language)

    def close(self) -> None:
        pass

    def synthesize(self, request: SpeechRequest) -> Speech:
        if request.language not in self.languages:
            raise BackendUnavailable(
                f"{self.name} does not speak {request.language!r}.",
                code="VOICE_LANGUAGE_UNSUPPORTED",
                message_ja=f"{self.name} は {request.language} を話せません。",
                details={"engine": self.name, "languages": list(self.languages)})
        voice = self.resolve_voice(request.voice, request.language)
        text = (normalize_ja(request.text) if request.language == "ja"
                else normalize_en(request.text))
        units = split_units(text, pause=request.pause)
        if not units:
            units_text = request.text.strip()
            raise BackendFailed("Nothing to say after normalising the text.",
                                code="VOICE_SYNTHESIS_FAILED",
                                message_ja="読み上げる内容がありません。",
                                details={"text": units_text[:80]})
        try:
            done = self._synthesize_units(units, voice, request.speed, request.language)
        except StudioError:
            raise
        except (FileNotFoundError, ImportError, OSError) as exc:
            raise BackendUnavailable(f"{self.name} could not load: {exc}",
                                     code="VOICE_ENGINE_UNAVAILABLE",
                                     message_ja=f"{self.name} を読み込めません: {exc}") from exc
        except Exception as exc:  # an engine bug on good input
            raise BackendFailed(f"{self.name} failed: {exc}", code="VOICE_SYNTHESIS_FAILED",
                                message_ja=f"{self.name} の音声合成に失敗しました: {exc}") from exc
        pieces = [(samples, unit.pause) for unit, (samples, _) in zip(units, done, strict=True)]
        samples, spans = join(pieces, OUTPUT_RATE)
        phonemes = _place_phonemes(done, spans)
        samples = normalize_peak(samples)
        samples = change_pitch(samples, OUTPUT_RATE, request.pitch, request.intonation)
        samples = apply_volume(samples, request.volume)
        sentences: dict[int, list[float]] = {}
        texts: dict[int, list[str]] = {}
        for unit, (start, end) in zip(units, spans, strict=True):
            span = sentences.setdefault(unit.sentence, [start, end])
            span[1] = end
            texts.setdefault(unit.sentence, []).append(unit.text + unit.end.strip())
        sep = "" if request.language == "ja" else " "
        said = [sep.join(texts[k]) for k in sentences]
        original = sentence_texts(request.text, sep)
        if len(original) == len(said):  # show the words as written, not as normalised
            said = original
        timings = tuple(Timing(s[0], s[1], text)
                        for s, text in zip(sentences.values(), said, strict=True))
        return Speech(Audio(samples, OUTPUT_RATE), sentences=timings, phonemes=phonemes)

    def _synthesize_units(self, units: list[Unit], voice: str, speed: float, language: str
                          ) -> list[tuple[np.ndarray, tuple[Timing, ...]]]:
        """Every unit at 24 kHz with its phoneme timing, in order; up to ``unit_workers``
        at once, longest first so that the last one to finish is a short one."""

        def one(unit: Unit) -> tuple[np.ndarray, tuple[Timing, ...]]:
            samples, rate, phonemes = self._unit_timed(unit.text, unit.end, voice, speed,
                                                       language)
            samples = np.asarray(samples, np.float32).ravel()
            if rate != OUTPUT_RATE:
                samples = resample_array(samples, rate, OUTPUT_RATE)
            return samples, phonemes

        workers = min(self.unit_workers, len(units))
        if workers <= 1:
            return [one(unit) for unit in units]
        order = sorted(range(len(units)), key=lambda k: -len(units[k].text))
        with ThreadPoolExecutor(workers, thread_name_prefix=f"{self.name}-unit") as pool:
            futures = {k: pool.submit(one, units[k]) for k in order}
            return [futures[k].result() for k in range(len(units))]


def _place_phonemes(done: list[tuple[np.ndarray, tuple[Timing, ...]]],
                    spans: list[tuple[float, float]]) -> tuple[Timing, ...]:
    """Unit-relative phoneme timing moved to where :func:`join` put each (trimmed) unit."""
    out: list[Timing] = []
    for (samples, phonemes), (start, end) in zip(done, spans, strict=True):
        if not phonemes:
            continue
        cut = trim_bounds(samples, OUTPUT_RATE)[0] / OUTPUT_RATE
        for ph in phonemes:
            a, b = max(start, start + ph.start - cut), min(end, start + ph.end - cut)
            if b > a:
                out.append(Timing(round(a, 4), round(b, 4), ph.text))
    return tuple(out)
