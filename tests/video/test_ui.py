"""The Video tab builds and exposes ``/generate_video``; its action renders a preview."""

from __future__ import annotations

import pytest

from app.ui import build_blocks
from app.ui.video import run_render
from pipelines.media import encode_wav


def test_generate_video_endpoint(services) -> None:
    assert "/generate_video" in build_blocks(services).get_api_info()["named_endpoints"]


@pytest.mark.slow
def test_preview_render(services, portrait, short_speech, tmp_path) -> None:
    wav = tmp_path / "s.wav"
    wav.write_bytes(encode_wav(short_speech.audio))
    video, file, details = run_render(services, portrait, str(wav), "auto", "512x512", True,
                                      "ありがとう。", 0, True)
    assert video == file and video.endswith(".mp4") and "/talking-video-" in video  # readable
    assert "the built-in face animator" in details  # in people's words
    assert "256×256" in details and "made in" in details
    assert "⚠" not in details  # a default install: the offline engines are the defaults
