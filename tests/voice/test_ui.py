"""The Voice tab through gradio_client against a live server (the API names scripts use)."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import LiveServer
from tests.voice.conftest import SENTENCES, make_services, ojt_speech, wav_bytes


@pytest.mark.slow
def test_voice_tab_api(settings: object, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    services = make_services(settings, tts_backends=["openjtalk", "piper"])
    try:
        with LiveServer(services, with_ui=True) as server:  # type: ignore[arg-type]
            client = Client(server.url + "/", verbose=False)
            audio, note = client.predict("こんにちは、元気ですか？", "mei", "ja", 1.0, 0, 1.0,
                                         1.0, 1.0, api_name="/synthesize")
            samples, rate = sf.read(audio)
            assert rate == 24000
            assert len(samples) / rate > 0.8
            assert "openjtalk" in note

            with pytest.raises(Exception, match="VOICE_TEXT_EMPTY"):
                client.predict("", "mei", "ja", 1, 0, 1, 1, 1, api_name="/synthesize")

            paths = []
            for i, sentence in enumerate(SENTENCES[:2]):
                path = tmp_path / f"rec{i}.wav"
                path.write_bytes(wav_bytes(ojt_speech(sentence, half_tone=3.0)))
                paths.append(handle_file(str(path)))
            table, summary, profiles, *_ = client.predict(
                "Tab voice", "ja", paths, None, api_name="/create_profile")
            assert "✅" in summary, summary
            assert "voice matching" in summary
            assert "cloning" not in summary.replace("not cloning", "")
            rows = client.predict(api_name="/list_profiles")
            pid = rows["data"][0][0]
            assert pid.startswith("openvoice_")

            audio, note = client.predict("また明日。", f"profile:{pid}", "ja", 1, 0, 1, 1, 1,
                                         api_name="/synthesize")
            assert "voice matching" in note
            message, rows, *_ = client.predict(pid, api_name="/delete_profile")
            assert rows["data"] == [] or rows["data"] == [[None] * 7] or not any(rows["data"][0])
    finally:
        services.close()  # type: ignore[attr-defined]
