"""Calibrating a voice profile for voice matching: which built-in voice (or blend) is
nearest the person's, with which pitch/formant parameters.

What does not depend on the new voice (each built-in voice saying the calibration sentence,
and its embedding) is made once and cached (:class:`CalibrationCache`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from models.base import (
    Audio,
    Blending,
    Calibrating,
    MatchingCalibration,
    SpeechEngine,
    SpeechRequest,
    VoiceInfo,
)
from models.chain import FallbackChain
from pipelines.voice.engines import LANGUAGES, speech_engines
from pipelines.voice.seed import SEED_DIR, Seed

T = TypeVar("T")

CALIBRATION_TEXT = {
    "ja": "こんにちは。今日はとても良い天気ですね。一緒に散歩に行きませんか？",
    "en": "Hello there. The weather is lovely today. Would you like to go for a walk?",
}


class CalibrationCache:
    """The part of voice-matching calibration that does not depend on the new voice: each
    built-in voice (and each blend used so far) saying the calibration sentence, with its
    speaker embedding. Kept in memory and, with a ``cache_dir``, as ``.npz`` files under
    ``{cache_dir}/voice_calibration/`` so a fresh process (or the first profile after an
    install that ran :func:`prepare_calibration`) pays nothing for them. What that
    directory lacks is read from :attr:`seed` (:mod:`pipelines.voice.seed`, shipped with
    the studio) before it is made."""

    seed: ClassVar[Seed | None] = Seed(SEED_DIR)
    _memory: ClassVar[dict[str, tuple[Audio, np.ndarray]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, cache_dir: Path | None) -> None:
        self.root = Path(cache_dir) / "voice_calibration" if cache_dir is not None else None

    @staticmethod
    def key(engine: str, voice: str, language: str, encoder: str,
            text: str | None = None) -> str:
        """Where ``voice`` saying ``text`` (the calibration sentence unless given) is kept."""
        said = CALIBRATION_TEXT[language] if text is None else text
        digest = hashlib.sha1(f"{said}|{encoder}|{voice}".encode())
        return f"{engine}-{language}-{digest.hexdigest()[:16]}"

    _making: ClassVar[dict[str, threading.Event]] = {}
    """What a thread is making now: another thread that needs it waits for it (a profile
    made while the warm-up runs must not say the same sentence a second time)."""

    def _once(self, memo: str, store: dict[str, T], make: Callable[[], T]) -> T:
        """``store[memo]``, made by ``make`` in one thread only; the others wait for it."""
        while True:
            with self._lock:
                if memo in store:
                    return store[memo]
                event = self._making.get(memo)
                if event is None:
                    event = self._making[memo] = threading.Event()
                    break
            event.wait()  # made (or failed: then this thread tries) elsewhere
        try:
            value = make()
            with self._lock:
                store[memo] = value
            return value
        finally:
            with self._lock:
                del self._making[memo]
            event.set()

    def get(self, key: str, say: Callable[[], Audio],
            embed: Callable[[Audio], np.ndarray]) -> tuple[Audio, np.ndarray]:
        return self._once(key, self._memory, lambda: self._load_or_make(key, say, embed))

    def _load_or_make(self, key: str, say: Callable[[], Audio],
                      embed: Callable[[Audio], np.ndarray]) -> tuple[Audio, np.ndarray]:
        path = self.root / f"{key}.npz" if self.root is not None else None
        item: tuple[Audio, np.ndarray] | None = None
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    item = (Audio(data["samples"].astype(np.float32), int(data["rate"])),
                            data["embedding"].astype(np.float32))
            except (OSError, ValueError, KeyError):
                item = None  # a torn or foreign file: make it again
        if item is None and self.seed is not None:
            item = self.seed.item(key)
            if item is not None:
                return item
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
        return item

    _scores: ClassVar[dict[str, float]] = {}

    def score(self, key: str, name: str, compute: Callable[[], float]) -> float:
        """A number measured once of the voice under ``key`` (its predicted naturalness by
        the judge ``name``), kept beside its audio as ``{key}.{name}.txt``."""
        memo = f"{key}.{name}"
        return self._once(memo, self._scores,
                          lambda: self._read_or_measure(key, name, compute))

    def _read_or_measure(self, key: str, name: str, compute: Callable[[], float]) -> float:
        path = self.root / f"{key}.{name}.txt" if self.root is not None else None
        value: float | None = None
        if path is not None and path.is_file():
            try:
                value = float(path.read_text("ascii"))
            except (OSError, ValueError):
                value = None
        if value is None and self.seed is not None:
            value = self.seed.score(key, name)
            if value is not None:
                return value
        if value is None:
            value = float(compute())
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
                tmp.write_text(repr(value), "ascii")
                tmp.replace(path)
        return value


class ProfilesFirst:
    """Profiles being made now. The warm-up waits between its items while there are any: a
    profile made during the warm-up makes what it needs itself, once, on cores the warm-up
    does not hold. Measured with a profile made 20 s into a cold warm-up: it said 58
    sentences itself, none twice, and the warm-up judged nothing meanwhile (before: 52 by
    the profile and 8 by the warm-up, 2 of them twice, and 20 judgements by the warm-up
    beside the profile). Its time did not fall (about 5 min either way, two runs side by
    side): the sentences every voice says are most of the warm-up, and a profile needs
    them all."""

    _count: ClassVar[int] = 0
    _quiet: ClassVar[threading.Condition] = threading.Condition()

    @classmethod
    @contextmanager
    def measuring(cls) -> Iterator[None]:
        with cls._quiet:
            cls._count += 1
        try:
            yield
        finally:
            with cls._quiet:
                cls._count -= 1
                cls._quiet.notify_all()

    @classmethod
    def wait(cls) -> None:
        """Return once no profile is being measured (at once when none is)."""
        with cls._quiet:
            cls._quiet.wait_for(lambda: cls._count == 0)


def _calibration_voices(tts: FallbackChain[Any], language: str
                        ) -> Iterator[tuple[SpeechEngine, VoiceInfo]]:
    """The built-in voices of the language on engines that work now (a style service's
    voices are remote and not its own: never calibrated against)."""
    for engine in speech_engines(tts):
        if engine.style_service or language not in engine.languages:
            continue
        if not engine.available()[0]:
            continue
        for info in engine.voices():
            if info.language == language:
                yield engine, info


def prepare_calibration(tts: FallbackChain[Any], matcher: Calibrating, cache_dir: Path | None,
                        languages: Sequence[str] = LANGUAGES) -> int:
    """Fill the calibration cache ahead of the first profile (at install or start-up).
    Returns how many voices are cached."""
    cache = CalibrationCache(cache_dir)
    count = 0
    for language in languages:
        for engine, info in _calibration_voices(tts, language):
            ProfilesFirst.wait()
            key = cache.key(engine.name, info.id, language, matcher.encoder_name)
            cache.get(key, _saying(engine, info.id, language), matcher.embed)
            count += 1
    return count


def _saying(engine: SpeechEngine, voice: str, language: str) -> Callable[[], Audio]:
    """Make ``engine`` say the calibration sentence in ``voice`` (when the cache has not)."""
    return lambda: engine.synthesize(
        SpeechRequest(CALIBRATION_TEXT[language], voice=voice, language=language)).audio


def calibrate_matching(tts: FallbackChain[Any], matcher: Calibrating, embedding: np.ndarray,
                       reference: Audio, language: str,
                       cache_dir: Path | None = None) -> MatchingCalibration | None:
    """Say a calibration sentence with each built-in voice of the language (and a blend of
    the two nearest voices of an engine that blends), and let the matcher choose voice and
    parameters. The voices' audio and embeddings come from :class:`CalibrationCache`.
    Which voice and converter serve each language is chosen afterwards, on three axes
    (:mod:`pipelines.voice.serving`)."""
    cache = CalibrationCache(cache_dir)
    encoder = matcher.encoder_name
    candidates: list[tuple[str, Audio]] = []
    embeddings: dict[str, np.ndarray] = {}
    blender: SpeechEngine | None = None
    default_voice = None
    for engine, info in _calibration_voices(tts, language):
        default_voice = default_voice or info.id
        audio, vector = cache.get(cache.key(engine.name, info.id, language, encoder),
                                  _saying(engine, info.id, language), matcher.embed)
        candidates.append((info.id, audio))
        embeddings[info.id] = vector
        if blender is None and isinstance(engine, Blending):
            blender = engine
    if not candidates:
        return None

    def blend(weights: Sequence[tuple[str, float]]) -> tuple[str, Audio] | None:
        if blender is None or not isinstance(blender, Blending):
            return None
        voice = blender.blend(weights)
        if voice is None:
            return None
        audio, vector = cache.get(cache.key(blender.name, voice, language, encoder),
                                  _saying(blender, voice, language), matcher.embed)
        embeddings[voice] = vector
        return voice, audio

    return matcher.calibrate(embedding, reference, candidates, blend=blend,
                             default_voice=default_voice, embeddings=embeddings)
