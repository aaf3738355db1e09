"""Speech and music for the prosody/BGM tests, made here (no TTS engine work needed):
Japanese speech from pyopenjtalk, a synthetic vowel with known F0 and formants, WAV bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from models.base import Audio
from pipelines.media import resample

SPEECH_TEXT = "お誕生日おめでとうございます。素敵な一年になりますように。これからもよろしくね。"


@pytest.fixture(scope="session")
def speech() -> Audio:
    """~7 s of Japanese speech at 24 kHz with two pauses between phrases."""
    import pyopenjtalk

    samples, rate = pyopenjtalk.tts(SPEECH_TEXT, use_sudachi_kanji_yomi=False)
    audio = Audio((np.asarray(samples) / 32768.0).astype(np.float32), int(rate))
    return resample(audio, 24000)


def vowel(f0: float, seconds: float = 1.5, rate: int = 24000,
          formants: tuple[tuple[float, float], ...] = ((700, 130), (1200, 150), (2600, 250)),
          ) -> Audio:
    """A steady /a/-like vowel: harmonics of ``f0`` weighted by Gaussian formant peaks."""
    t = np.arange(int(rate * seconds)) / rate
    x = np.zeros_like(t)
    for k in range(1, int(9000 / f0)):
        fk = k * f0
        amp = sum(np.exp(-(((fk - f) / b) ** 2)) for f, b in formants) + 0.01
        x += amp * np.sin(2 * np.pi * fk * t) / np.sqrt(k)
    return Audio((x / np.abs(x).max() * 0.5).astype(np.float32), rate)


def wav_bytes(audio: Audio, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio.samples, audio.sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def speech_wav(speech: Audio) -> bytes:
    return wav_bytes(speech)
