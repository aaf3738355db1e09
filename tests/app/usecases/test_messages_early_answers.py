"""Early answers: every choice a message needs is checked when it is submitted, so a bad
mood, music, voice, profile or size is a 400 with the allowed values before any work is
queued (no job, no stored photo), not a job that fails seconds later."""

from __future__ import annotations

import io

import pytest
from PIL import Image


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 170, 150)).save(buffer, format="PNG")
    return buffer.getvalue()


def _submit(client, **fields: str):
    data = {"text": "こんにちは", **fields}
    return client.post("/api/video/generate", data=data,
                       files={"image": ("me.png", _photo(), "image/png")})


@pytest.mark.parametrize(("field", "value", "code", "allowed_key", "allowed_item"), [
    ("bgm_type", "polka", "BGM_TRACK_NOT_FOUND", "moods", "celebration"),
    ("emotion", "furious", "PROSODY_INVALID_PARAMS", "allowed", "happy"),
    ("size", "640x480", "VIDEO_INVALID_SIZE", "allowed", "512x512"),
    ("voice_profile", "no_such_voice", "VOICE_UNKNOWN_VOICE", "voices", None),
    ("voice_profile", "voicevox:abc", "VOICE_UNKNOWN_VOICE", None, None),
    ("language", "fr", "VOICE_INVALID_LANGUAGE", "allowed", "ja"),
])
def test_bad_choice_is_400_before_any_work(client, services, field: str, value: str,
                                           code: str, allowed_key: str | None,
                                           allowed_item: str | None) -> None:
    response = _submit(client, **{field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if allowed_key:
        assert allowed_key in error["details"], error
        if allowed_item:
            assert allowed_item in error["details"][allowed_key]
    assert services.jobs.list() == []
    assert list(services.storage.list("inputs/images")) == []


def test_unknown_mood_lists_every_allowed_value(client) -> None:
    error = _submit(client, bgm_type="polka").json()["error"]
    details = error["details"]
    assert details["field"] == "bgm_type" and details["bgm_type"] == "polka"
    assert details["none"] == "none"
    assert details["tracks"], details  # the built-in catalogue's ids
    assert "polka" in error["message"]


def test_unknown_profile_is_refused_before_work(client, services) -> None:
    response = _submit(client, voice_profile="openvoice_doesnotexist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "VOICE_PROFILE_NOT_FOUND"
    assert services.jobs.list() == []


def test_valid_choices_are_queued(client, services) -> None:
    response = _submit(client, bgm_type="calm", emotion="happy", size="720x1280")
    assert response.status_code == 202, response.text
    job = services.jobs.get(response.json()["data"]["task_id"])
    assert (job.params["bgm"], job.params["emotion"], job.params["size"]) == \
        ("calm", "happy", "720x1280")
    assert services.storage.exists(job.params["image_key"])


def test_message_status_names_every_stages_engine() -> None:
    from app.usecases.video import message_engines

    result = {"engines": {"video": "builtin"}, "fallback_used": True, "stages": [
        {"stage": "image", "status": "done", "backend": "mediapipe", "fallback_used": True,
         "duration": 1.0},
        {"stage": "voice", "status": "done", "backend": "openjtalk", "fallback_used": True,
         "fallback_method": "openjtalk"},
        {"stage": "video", "status": "done", "backend": "builtin", "fallback_used": True,
         "fallback_method": "builtin"},
        {"stage": "subtitles", "status": "skipped"}]}
    view = message_engines(result)
    assert (view["backend"], view["fallback_used"], view["fallback_method"]) == \
        ("builtin", True, "builtin")
    assert [st["stage"] for st in view["stages"]] == ["image", "voice", "video", "subtitles"]
    assert "duration" not in view["stages"][0]
    unfinished = message_engines({})
    assert unfinished["backend"] is None and unfinished["fallback_used"] is None
