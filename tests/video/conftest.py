"""Video fixtures: a real portrait, derived variants, and real Japanese speech."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.config import Settings
from app.services import Services, build_services
from models.base import Audio, Speech
from tests.conftest import require_binary

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def portrait() -> Image.Image:
    return Image.open(DATA / "portrait_glasses.jpg").convert("RGB")


@pytest.fixture(scope="session")
def no_face_image() -> Image.Image:
    rng = np.random.default_rng(3)
    arr = (rng.random((300, 300, 3)) * 60 + 100).astype(np.uint8)
    img = Image.fromarray(arr)
    ImageDraw.Draw(img).rectangle((50, 50, 250, 250), fill=(30, 120, 200))
    return img


def tts(text: str) -> Audio:
    import pyopenjtalk

    wav, rate = pyopenjtalk.tts(text, use_sudachi_kanji_yomi=False)
    return Audio((np.asarray(wav) / 32768.0).astype(np.float32), int(rate))


@pytest.fixture(scope="session")
def speech_ja() -> Speech:
    return Speech(tts("こんにちは。今日は、みなさんにメッセージをお送りします。"))


@pytest.fixture(scope="session")
def short_speech() -> Speech:
    return Speech(tts("ありがとう。"))


def ffprobe(path: Path) -> dict:
    """Stream and format facts from the Debian ffprobe (skipped where it is missing, a failure
    where services are required, as ``require_binary`` does)."""
    import json

    exe = require_binary("ffprobe")
    out = subprocess.run([exe, "-v", "error", "-show_streams", "-show_format", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def video_services(settings: Settings) -> Iterator[Services]:
    """Services whose queue runs jobs at once, inside submit (huey immediate mode)."""
    svc = build_services(settings, immediate=True)
    yield svc
    svc.close()
