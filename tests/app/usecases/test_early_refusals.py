"""Uploads that are obviously not media are refused when they are submitted, through REST
and through the Gradio door, with the error code their job would have failed with; nothing
is stored and no job is queued.

* Voice profile clips: a clip that does not decode gets ``VOICE_SAMPLE_AUDIO_INVALID`` (the
  code the profile job's own decode step gives: checked against that step) with every
  clip's verdict in ``details.clips``. A clip that decodes but is too short is still judged
  by the job (on denoised audio), as before.
* Photos of a message: ``IMAGE_INVALID_FORMAT`` from the same decoder the render uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services import Services, build_services
from models.errors import InvalidInput
from pipelines.voice.create import create_profile
from pipelines.voice.profiles import ProfileStore
from tests.conftest import LiveServer
from tests.fixtures.voice import SENTENCES, ojt_speech, wav_bytes

JUNK = b"these are my holiday notes, not a recording\n" * 20


@pytest.fixture
def studio(settings, tmp_path: Path) -> Iterator[tuple[LiveServer, Services]]:
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "rate_limit_per_minute": 0,
        "tts_backends": ["openjtalk"]}))  # no consumer: a queued job would stay visible
    with LiveServer(services, with_ui=True) as server:
        yield server, services
    services.close()


def _nothing_kept(services: Services) -> None:
    assert list(services.storage.list("inputs/")) == []
    assert services.jobs.list() == []


def _job_code(clips: list[tuple[bytes, str]], services: Services) -> str:
    """The code the profile job itself fails with on these clips (its decode step runs
    before any engine: none is needed to reach it)."""
    with pytest.raises(InvalidInput) as failure:
        create_profile(clips, name="x", store=ProfileStore(services.storage),
                       encoder=None)  # type: ignore[arg-type]
    return failure.value.code


def test_rest_refuses_undecodable_clips(studio) -> None:
    server, services = studio
    good = wav_bytes(ojt_speech(SENTENCES[0]))
    clips = [("take 1.wav", good), ("notes.wav", JUNK)]
    answer = httpx.post(f"{server.url}/api/voice/profiles", data={"name": "Junk"},
                        files=[("audio_samples", (n, d, "audio/wav")) for n, d in clips],
                        headers={"Accept-Language": "ja"}, timeout=60)
    assert answer.status_code in (400, 422), answer.text
    error = answer.json()["error"]
    assert error["code"] == "VOICE_SAMPLE_AUDIO_INVALID"
    assert error["code"] == _job_code([(d, n) for n, d in clips], services)
    assert "notes.wav" in error["message"]
    verdicts = [c["verdict"] for c in error["details"]["clips"]]
    assert verdicts == ["ok", "rejected"] and error["details"]["filename"] == "notes.wav"
    _nothing_kept(services)
    # a clip that decodes is the job's to judge: accepted, as before
    short = wav_bytes(ojt_speech(SENTENCES[0])[:24000])
    queued = httpx.post(f"{server.url}/api/voice/profiles", data={"name": "Short"},
                        files=[("audio_samples", ("short.wav", short, "audio/wav"))],
                        timeout=60)
    assert queued.status_code == 202, queued.text


def test_rest_refuses_undecodable_photo(studio) -> None:
    server, services = studio
    answer = httpx.post(f"{server.url}/api/video/generate",
                        data={"text": "こんにちは。", "bgm_type": "none"},
                        files={"image": ("holiday.jpg", JUNK, "image/jpeg")}, timeout=60)
    assert answer.status_code in (400, 415, 422), answer.text
    assert answer.json()["error"]["code"] == "IMAGE_INVALID_FORMAT"
    _nothing_kept(services)


@pytest.mark.slow
def test_gradio_door_refuses_undecodable_uploads(studio, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    server, services = studio
    junk = tmp_path / "notes.wav"
    junk.write_bytes(JUNK)
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(JUNK)
    client = Client(server.url + "/", verbose=False)
    table, summary, *_ = client.predict("Junk", "ja", [handle_file(str(junk))], None,
                                        api_name="/create_profile")
    assert "(VOICE_SAMPLE_AUDIO_INVALID)" in summary and "notes.wav" in summary
    assert [row[1] for row in table["data"]] == ["not usable"]  # the verdict, for people
    # the microphone input is checked before the handler, with the same code
    with pytest.raises(Exception, match="VOICE_SAMPLE_AUDIO_INVALID"):
        client.predict("Junk", "ja", None, handle_file(str(junk)), api_name="/create_profile")
    with pytest.raises(Exception, match="IMAGE_INVALID_FORMAT"):
        client.predict(image=handle_file(str(photo)), text="こんにちは。", bgm="none",
                       api_name="/generate_message")
    _nothing_kept(services)
