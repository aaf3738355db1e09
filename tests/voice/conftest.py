"""Voice test helpers: real speech made fast (OpenJTalk), encoded as upload bytes."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pytest

RATE = 24000


@lru_cache(maxsize=16)
def ojt_speech(text: str, half_tone: float = 0.0) -> np.ndarray:
    """OpenJTalk speech at 24 kHz (tens of ms per sentence; a real voice, not a tone)."""
    import pyopenjtalk
    import soxr

    audio, rate = pyopenjtalk.tts(text, half_tone=half_tone, use_sudachi_kanji_yomi=False)
    samples = (np.asarray(audio) / 32768.0).astype(np.float32)
    out = soxr.resample(samples, rate, RATE).astype(np.float32)
    return out / max(1e-6, float(np.max(np.abs(out)))) * 0.7


def wav_bytes(samples: np.ndarray, rate: int = RATE, subtype: str = "PCM_16",
              fmt: str = "WAV") -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1, 1), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


SENTENCES = (
    "今日はとても良い天気ですね。駅前の公園まで散歩に行きましょう。",
    "明日の会議は午前十時から始まります。資料を準備しておいてください。",
    "週末は家族と一緒に海へ出かける予定です。楽しみにしています。",
)


@pytest.fixture
def clip() -> bytes:
    return wav_bytes(ojt_speech(SENTENCES[0]))


@pytest.fixture
def clips() -> list[tuple[bytes, str]]:
    return [(wav_bytes(ojt_speech(s)), f"take{i + 1}.wav") for i, s in enumerate(SENTENCES)]


def make_services(settings: object, *, immediate: bool = False, **overrides: object) -> object:
    """Services over the isolated settings with some fields changed (engine orders...);
    ``immediate``: queued jobs (voice profiles) run as they are submitted."""
    from app.services import build_services

    return build_services(settings.model_copy(update=overrides),  # type: ignore[attr-defined]
                          immediate=immediate)


@pytest.fixture
def voice_client(settings: object) -> object:
    """A TestClient whose speech chain is OpenJTalk only (fast) and real encoder/matcher."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    services = make_services(settings, immediate=True, tts_backends=["openjtalk"])
    with TestClient(create_app(services, with_ui=False), raise_server_exceptions=False) as c:
        c.services = services  # type: ignore[attr-defined]
        yield c
    services.close()  # type: ignore[attr-defined]
