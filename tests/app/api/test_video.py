"""``/api/video/*`` over HTTP: accepted references, refusals, and a full render job."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from models.base import Speech
from pipelines.media import encode_wav
from tests.conftest import expected_engine


@pytest.fixture
def api(video_services):
    with TestClient(create_app(video_services, with_ui=False),
                    raise_server_exceptions=False) as c:
        yield c, video_services


def put_inputs(services, portrait: Image.Image, speech: Speech) -> tuple[str, str]:
    buf = io.BytesIO()
    portrait.save(buf, format="JPEG")
    services.storage.put("inputs/images/p.jpg", buf.getvalue())
    services.storage.put("inputs/audio/s.wav", encode_wav(speech.audio))
    return "/files/inputs/images/p.jpg", "inputs/audio/s.wav"


@pytest.mark.slow
def test_post_generate_202_then_status_completed(api, portrait, short_speech) -> None:
    client, services = api
    image_url, audio_url = put_inputs(services, portrait, short_speech)
    response = client.post("/api/video/generate", json={
        "image_url": image_url, "audio_url": audio_url, "text": "ありがとう。",
        "options": {"size": "512x512", "subtitles": True}})
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "queued"
    assert data["estimated_time"] > 0
    status = client.get(f"/api/video/status/{data['task_id']}").json()["data"]
    assert status["status"] == "completed", status
    engine, fallback = expected_engine(services, "talking_head")
    assert status["backend"] == engine  # builtin where Wav2Lip has no weights
    assert status["fallback_used"] is fallback
    assert status["video_url"].startswith("/files/videos/final/")
    assert abs(status["duration"] - short_speech.audio.duration) < 0.05
    mp4 = client.get(status["video_url"])
    assert mp4.status_code == 200
    assert mp4.content[4:8] == b"ftyp"
    srt = client.get(status["srt_url"]).text
    assert "ありがとう" in srt
    assert client.get(status["vtt_url"]).text.startswith("WEBVTT")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"image_url": "http://169.254.169.254/x.png", "audio_url": "inputs/audio/s.wav"}, 400,
     "VIDEO_INVALID_URL"),
    ({"image_url": "https://127.0.0.1/x.png", "audio_url": "inputs/audio/s.wav"}, 400,
     "VIDEO_INVALID_URL"),
    ({"image_url": "/files/inputs/images/none.png", "audio_url": "inputs/audio/s.wav"}, 404,
     "VIDEO_INPUT_NOT_FOUND"),
    ({"image_url": "/files/../secret", "audio_url": "inputs/audio/s.wav"}, 400,
     "STORAGE_INVALID_KEY"),
    ({"image_url": "inputs/images/p.jpg"}, 400, "VIDEO_INVALID_REQUEST"),
    ({"image_url": "inputs/images/p.jpg", "audio_url": "inputs/audio/s.wav",
      "options": {"size": "999x999"}}, 400, "VIDEO_INVALID_SIZE"),
    ({"image_url": "inputs/images/p.jpg", "audio_url": "inputs/audio/s.wav",
      "options": {"engine": "nope"}}, 400, "VIDEO_UNKNOWN_ENGINE"),
])
def test_post_generate_refusals(api, portrait, short_speech, body, status, code) -> None:
    client, services = api
    put_inputs(services, portrait, short_speech)
    response = client.post("/api/video/generate", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_post_generate_bad_files(api) -> None:
    client, services = api
    services.storage.put("inputs/images/bad.png", b"not an image")
    services.storage.put("inputs/audio/bad.wav", b"RIFF\xff\xff\xff\x00WAVEjunk")
    response = client.post("/api/video/generate", json={
        "image_url": "inputs/images/bad.png", "audio_url": "inputs/audio/bad.wav"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IMAGE_INVALID_FORMAT"


@pytest.mark.slow
def test_no_face_fails_the_job_with_video_no_face(api, no_face_image, short_speech) -> None:
    client, services = api
    put_inputs(services, no_face_image, short_speech)
    response = client.post("/api/video/generate", json={
        "image_url": "inputs/images/p.jpg", "audio_url": "inputs/audio/s.wav"})
    task = response.json()["data"]["task_id"]
    status = client.get(f"/api/video/status/{task}").json()["data"]
    assert status["status"] == "failed"
    assert status["error"]["code"] == "VIDEO_NO_FACE"


def test_multipart_goes_to_the_message_path_and_content_types(api) -> None:
    client, _ = api
    response = client.post("/api/video/generate", files={"image": ("a.png", b"x")},
                           data={"text": "hi"})
    assert response.status_code == 400  # the message path validated the photo
    assert response.json()["error"]["code"] == "IMAGE_INVALID_FORMAT"
    response = client.post("/api/video/generate", content=b"x",
                           headers={"content-type": "text/plain"})
    assert response.json()["error"]["code"] == "VIDEO_UNSUPPORTED_MEDIA_TYPE"


def test_get_status_404(api) -> None:
    client, _ = api
    response = client.get("/api/video/status/nope")
    assert response.status_code == 404
