"""The Prosody and BGM tabs build, and their Gradio API endpoints work over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.base import Audio
from pipelines.media import decode_audio
from pipelines.sound.loudness import integrated_loudness


@pytest.fixture
def ui_server(services):
    from tests.conftest import LiveServer

    with LiveServer(services, with_ui=True) as server:
        yield server


@pytest.mark.slow
def test_gradio_api_adjust_list_and_mix(ui_server, tmp_path: Path, speech_wav: bytes,
                                        speech: Audio) -> None:
    from gradio_client import Client, handle_file

    voice = tmp_path / "voice.wav"
    voice.write_bytes(speech_wav)
    client = Client(ui_server.url, verbose=False)
    after, plot, changes = client.predict(handle_file(str(voice)), "happy", "", 2.0, 1.1, 1.26,
                                          1.2, 0.9, api_name="/adjust_prosody")
    summary = json.loads(changes)
    assert summary["emotion"] == "happy"
    assert "pitch" in summary["changes_applied"]
    adjusted = decode_audio(Path(after).read_bytes())
    assert adjusted.duration < speech.duration / 1.05
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    tracks = client.predict(api_name="/list_tracks")
    ids = [row[0] for row in tracks["data"]]
    assert "celebration-bright" in ids

    mixed, download, envelope, details = client.predict(
        handle_file(str(voice)), "celebration-bright", 0.3, 1.0, 2.0, 1.0, 2.0, True, 12.0,
        80.0, 400.0, "mp3", api_name="/mix_bgm")
    info = json.loads(details)
    assert info["ducking"]["depth_db"] == 12.0
    assert info["voice_to_music_db"] >= 10
    audio = decode_audio(Path(download).read_bytes(), target_rate=None)
    assert integrated_loudness(audio) == pytest.approx(-16.0, abs=0.5)
    assert Path(envelope).read_bytes()[:4] == b"\x89PNG"
