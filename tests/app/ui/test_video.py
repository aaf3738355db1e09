"""The Video tab builds and exposes ``/generate_video``; its action renders a preview."""

from __future__ import annotations

import pytest

from app.ui import build_blocks, records
from app.ui.fallback import engine_name
from app.ui.video import run_render
from pipelines.media import encode_wav
from tests.conftest import expected_engine


def test_generate_video_endpoint(services) -> None:
    assert "/generate_video" in build_blocks(services).get_api_info()["named_endpoints"]


# what a person judges in a preview: the face there and whole, the lips moving with the
# voice, never a frozen picture, the picture as long as the sound (the preview's sound is the
# voice as given: loudness and music are the message's business, not judged here)
JUDGED = ("face", "head", "lips", "lag", "frozen", "duration", "voice")
SPOKEN = "こんにちは。今日は、みなさんにメッセージをお送りします。"  # speech_ja's words


@pytest.mark.slow
def test_preview_render(services, portrait, speech_ja, tmp_path) -> None:
    from quality import contact_sheet, measure, table

    wav = tmp_path / "s.wav"
    wav.write_bytes(encode_wav(speech_ja.audio))
    video, file, details = run_render(services.chain, services.settings, records(services), portrait, str(wav), "auto", "512x512", True,
                                      SPOKEN, 0, True)
    assert video == file and video.endswith(".mp4") and "/talking-video-" in video  # readable
    engine, _ = expected_engine(services, "talking_head")
    assert f"**{engine_name('talking_head', engine, 'en')}**" in details  # people's words
    assert "256×256" in details and "made in" in details
    assert "⚠" not in details  # a default install: the offline engines are the defaults
    report = measure(video, text=SPOKEN)  # opened, watched and listened to
    failed = [name for name in JUDGED if not report.checks[name].ok]
    if failed:
        contact_sheet(video, tmp_path / "preview.png", report)
    assert not failed, f"{table([report])}\n{[report.checks[n] for n in failed]}"
    assert report.size == (256, 256)
    assert report.checks["lips"].detail.startswith("over ")  # judged over the speech frames
    assert report.media is not None
    assert abs(report.media.audio_seconds - speech_ja.audio.duration) < 0.1
