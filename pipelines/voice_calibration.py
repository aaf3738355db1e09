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
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models.base import (
    Audio,
    Blending,
    Calibrating,
    FallbackChain,
    MatchingCalibration,
    SpeechEngine,
    SpeechRequest,
    VoiceInfo,
)
from models.voice.resemblyzer import cosine
from pipelines.speech import LANGUAGES, speech_engines

CALIBRATION_TEXT = {
    "ja": "こんにちは。今日はとても良い天気ですね。一緒に散歩に行きませんか？",
    "en": "Hello there. The weather is lovely today. Would you like to go for a walk?",
}


class CalibrationCache:
    """The part of voice-matching calibration that does not depend on the new voice: each
    built-in voice (and each blend used so far) saying the calibration sentence, with its
    speaker embedding. Kept in memory and, with a ``cache_dir``, as ``.npz`` files under
    ``{cache_dir}/voice_calibration/`` so a fresh process (or the first profile after an
    install that ran :func:`prepare_calibration`) pays nothing for them."""

    _memory: ClassVar[dict[str, tuple[Audio, np.ndarray]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, cache_dir: Path | None) -> None:
        self.root = Path(cache_dir) / "voice_calibration" if cache_dir is not None else None

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
            key = cache.key(engine.name, info.id, language, matcher.encoder_name)
            cache.get(key, _saying(engine, info.id, language), matcher.embed)
            count += 1
    return count


def _saying(engine: SpeechEngine, voice: str, language: str) -> Callable[[], Audio]:
    """Make ``engine`` say the calibration sentence in ``voice`` (when the cache has not)."""
    return lambda: engine.synthesize(
        SpeechRequest(CALIBRATION_TEXT[language], voice=voice, language=language)).audio


Serve = Callable[[Audio], tuple[str, Audio] | None]
"""Audio -> (the converter that served, the audio as the profile will be heard), or None
when no converter could."""


def calibrate_matching(tts: FallbackChain[Any], matcher: Calibrating, embedding: np.ndarray,
                       reference: Audio, language: str,
                       cache_dir: Path | None = None,
                       serve: Serve | None = None) -> MatchingCalibration | None:
    """Say a calibration sentence with each built-in voice of the language (and a blend of
    the two nearest voices of an engine that blends), and let the matcher choose voice and
    parameters. The voices' audio and embeddings come from :class:`CalibrationCache`.
    ``serve``: the profile's converter chain; when another converter than the matcher
    serves (frame matching), its similarity is recorded too (``similarity.served`` and
    ``served_by``), and the nearer of the two is the one that serves the profile
    (``similarity.serves``; see :func:`pipelines.speech.convert_to_profile`)."""
    cache = CalibrationCache(cache_dir)
    encoder = matcher.encoder_name
    candidates: list[tuple[str, Audio]] = []
    embeddings: dict[str, np.ndarray] = {}
    said: dict[str, Audio] = {}  # every voice (and blend) heard, by name
    blender: SpeechEngine | None = None
    default_voice = None
    for engine, info in _calibration_voices(tts, language):
        default_voice = default_voice or info.id
        audio, vector = cache.get(cache.key(engine.name, info.id, language, encoder),
                                  _saying(engine, info.id, language), matcher.embed)
        candidates.append((info.id, audio))
        embeddings[info.id] = vector
        said[info.id] = audio
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
        said[voice] = audio
        return voice, audio

    calibration = matcher.calibrate(embedding, reference, candidates, blend=blend,
                                    default_voice=default_voice, embeddings=embeddings)
    if calibration is None or serve is None:
        return calibration
    source = said.get(calibration.source_voice)
    served = serve(source) if source is not None else None
    own = matcher.name
    if served is not None and served[0] != own:
        backend, heard = served
        similarity = calibration.similarity
        similarity["served"] = round(cosine(matcher.embed(heard), embedding), 4)
        similarity["served_by"] = backend
        # measured, not assumed: the nearer of the two serves this profile
        similarity["serves"] = backend if similarity["served"] >= similarity["matched"] \
            else own
    return calibration
