"""OpenJTalk (HTS, voice "mei") through pyopenjtalk-plus: tiny, very fast Japanese.

It sounds more synthetic than Kokoro but needs no neural model, so it is the last local
resort for Japanese. ``use_sudachi_kanji_yomi=False`` because that path needs a Sudachi
dictionary that is not installed and crashes on some sentences.

Phoneme timing (for lip-sync): HTS predicts each full-context label's duration from that
label alone (states rounded one by one at any speed), so synthesizing each label by itself
gives its exact length — the sum equals the sentence's length to the sample. That costs
about one more synthesis (RTF ~0.03), far cheaper than synthesizing every prefix.
"""

from __future__ import annotations

import threading

import numpy as np

from models.base import EngineSettings, Timing, VoiceInfo, module_available
from models.speech.local import LocalSpeech, UnitAudio

_LOCK = threading.Lock()  # the OpenJTalk frontend is not re-entrant


class OpenJTalkSpeech(LocalSpeech):
    name = "openjtalk"
    VOICES = (VoiceInfo("mei", "Mei (OpenJTalk)", "ja", "female", "openjtalk"),)

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("pyopenjtalk")
        return (True, "OpenJTalk HTS voice mei (bundled)") if ok else (False, why)

    def _unit_timed(self, text: str, end: str, voice: str, speed: float,
                    language: str) -> UnitAudio:
        import pyopenjtalk

        with _LOCK:
            labels = pyopenjtalk.extract_fullcontext(text + ("？" if end in "?？" else ""),
                                                     use_sudachi_kanji_yomi=False)
            audio, rate = pyopenjtalk.synthesize(labels, speed=speed)
            lengths = [len(pyopenjtalk.synthesize([label], speed=speed)[0]) for label in labels]
        samples = (np.asarray(audio, np.float64) / 32768.0).astype(np.float32)
        return samples, int(rate), label_timings(labels, lengths, int(rate), len(samples))


def label_timings(labels: list[str], lengths: list[int], rate: int, total: int
                  ) -> tuple[Timing, ...]:
    """Phoneme timing from each label's own synthesized length (pauses left out).

    The symbol is the label's current phoneme (``a``, ``I`` devoiced, ``N``, ``cl``, ``my``...).
    When the lengths do not add up to the audio (they always do with pyopenjtalk-plus's
    HTS engine), nothing is returned rather than a drifting timing.
    """
    if not labels or len(lengths) != len(labels) or abs(sum(lengths) - total) > rate // 100:
        return ()
    out = []
    cursor = 0
    for label, length in zip(labels, lengths, strict=True):
        symbol = label.split("-", 1)[1].split("+", 1)[0] if "-" in label else ""
        if symbol and symbol not in ("sil", "pau"):
            out.append(Timing(cursor / rate, (cursor + length) / rate, symbol))
        cursor += length
    return tuple(out)
