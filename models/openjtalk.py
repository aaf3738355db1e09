"""OpenJTalk (HTS, voice "mei") through pyopenjtalk-plus: tiny, very fast Japanese.

It sounds more synthetic than Kokoro but needs no neural model, so it is the last local
resort for Japanese. ``use_sudachi_kanji_yomi=False`` because that path needs a Sudachi
dictionary that is not installed and crashes on some sentences.
"""

from __future__ import annotations

import threading

import numpy as np

from models.base import EngineSettings, VoiceInfo, module_available
from models.speech_local import LocalSpeech

_LOCK = threading.Lock()  # the OpenJTalk frontend is not re-entrant


class OpenJTalkSpeech(LocalSpeech):
    name = "openjtalk"
    VOICES = (VoiceInfo("mei", "Mei (OpenJTalk)", "ja", "female", "openjtalk"),)

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("pyopenjtalk")
        return (True, "OpenJTalk HTS voice mei (bundled)") if ok else (False, why)

    def _unit(self, text: str, end: str, voice: str, speed: float,
              language: str) -> tuple[np.ndarray, int]:
        import pyopenjtalk

        with _LOCK:
            audio, rate = pyopenjtalk.tts(text + ("？" if end in "?？" else ""), speed=speed,
                                          use_sudachi_kanji_yomi=False)
        return (np.asarray(audio, np.float64) / 32768.0).astype(np.float32), int(rate)
