"""The use cases both doors call (app/usecases/), called here as the doors call them: with
only the parts each one needs (the store, the jobs, the queue, a chain), no app around them
and no ``Services``."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from app.services import Services
from app.usecases import image, jobs, messages, music, prosody, video
from models.errors import InvalidInput, NotFound


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def _tone_wav(seconds: float = 1.0, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate,
             format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_image_request_checked_before_any_upload_is_read() -> None:
    with pytest.raises(InvalidInput) as caught:
        image.check_request(None, "gif", 0.5)
    assert caught.value.code == "IMAGE_INVALID_FORMAT"
    ops, fmt = image.check_request(None, "JPEG", 0.5)
    assert fmt == "jpg" and ops  # the default operations


def test_image_processing_queued_over_store_and_queue(services: Services) -> None:
    data = _png()
    answer = image.submit_processing(
        services.storage, services.queue, picture=image.load_picture(data), data=data,
        background=None, ops=["framing"], fmt="png",
        framing={"aspect": "1:1", "size": 512, "padding": 0, "background": "transparent",
                 "background_color": "#ffffff", "background_id": None},
        person_ids=None, sensitivity=0.5, owner="alice")
    job = services.jobs.get(answer["task_id"])
    assert job.kind == "image.process" and job.owner == "alice"
    assert services.storage.get(job.params["input_key"]) == data
    assert answer["status_url"] == f"/api/image/status/{job.id}"
    # the status over the jobs alone: the owner sees it, a stranger reads "not found"
    view = image.status_view(services.storage, services.jobs, job.id, lambda o: o == "alice")
    assert view["task_id"] == job.id and view["status"] == "queued"
    with pytest.raises(NotFound) as caught:
        image.status_view(services.storage, services.jobs, job.id, lambda o: o == "bob")
    assert caught.value.code == "IMAGE_TASK_NOT_FOUND"


def test_jobs_view_list_and_short_ids(services: Services) -> None:
    answer = jobs.submit_diagnostics(services.queue, {"seconds": 0.2, "slices": 1, "delay": 0},
                                     priority=0, expires=None, owner="alice")
    job_id = answer["task_id"]
    assert answer["status_url"] == f"/api/jobs/{job_id}"
    assert jobs.resolve_id(services.jobs, job_id[:10]) == job_id
    assert jobs.resolve_id(services.jobs, "zz-no-such") == "zz-no-such"
    with pytest.raises(NotFound) as caught:
        jobs.visible_job(services.jobs, job_id, lambda owner: owner == "bob")
    assert caught.value.code == "QUEUE_JOB_NOT_FOUND"
    view = jobs.job_view(services.storage, services.jobs, services.queue, job_id)
    assert view["task_id"] == view["job_id"] == job_id and "owner" in view
    listed = jobs.list_jobs(services.jobs, services.queue, status=None, kind=None, limit=0,
                            owner="alice")
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    assert "diagnostics.tone" in jobs.queue_kinds()


def test_messages_found_by_short_id_for_their_owner_only(services: Services) -> None:
    job = services.jobs.create(messages.KIND, {"text": "hi"}, ["image"], owner="alice")
    assert messages.resolve_id(services.jobs, job.id[:12], "alice") == job.id
    assert messages.resolve_id(services.jobs, job.id[:12], "bob") == job.id[:12]
    assert [j.id for j in messages.history(services.jobs, limit=0, owner="alice")] == [job.id]
    assert messages.message_view(services.storage, job)["text"] == "hi"


def test_prosody_settings_checked_then_result_stored(services: Services) -> None:
    with pytest.raises(InvalidInput) as caught:
        prosody.settings({}, "ogg")
    assert caught.value.code == "PROSODY_INVALID_PARAMS"
    params, fmt = prosody.settings({"pitch_shift": 2.0}, "WAV")
    done = prosody.adjust_recording(services.storage, _tone_wav(), "tone.wav", params, fmt)
    assert done.key.startswith("prosody/") and services.storage.exists(done.key)
    answer = prosody.answer(services.storage, done)
    assert answer["format"] == "wav" and answer["output_key"] == done.key
    assert abs(answer["original_duration"] - 1.0) < 0.05
    assert len(prosody.preset_values("happy")) == len(prosody.SLIDERS)


def test_music_tracks_and_mix_answer(services: Services) -> None:
    with pytest.raises(NotFound) as caught:
        music.track_audio(services.storage, "no-such-track", None)
    assert caught.value.code == "BGM_TRACK_NOT_FOUND"
    first = music.first_builtin()
    audio = music.track_audio(services.storage, first, None)
    assert audio.builtin and audio.data and audio.media_type.startswith("audio/")
    assert music.track_file(services.storage, "no-such-track", None) is None
    assert music.track_id("celebration", services.storage) is not None
    mixed = music.mix_voice(services.storage, _tone_wav(2.0), "voice.wav", "none",
                            music.mix_options({"output_format": "wav"}))
    assert services.storage.exists(mixed.key) and mixed.track is None
    answer = music.mix_answer(services.storage, mixed, uploaded_music=True, music_name="x.mp3")
    assert answer["track"] == {"id": "upload", "title": "x.mp3"}
    assert music.mix_answer(services.storage, mixed)["track"] is None


def test_video_engine_checked_against_the_configured_ones(services: Services) -> None:
    with pytest.raises(InvalidInput) as caught:
        video.render_options({"engine": "nope"}, ["builtin"])
    assert caught.value.code == "VIDEO_UNKNOWN_ENGINE"
    render = video.render_options({"size": video.DEFAULT_SIZE}, [])
    inputs = {"image_key": "inputs/images/a.png", "audio_key": "inputs/audio/a.wav",
              "duration": 2.0}
    answer = video.submit_render(services.queue, inputs, render, text=None, driver_url=None,
                                 result_format="mp4", owner=None)
    assert answer["status_url"] == f"/api/video/status/{answer['task_id']}"
    view = video.status_view(services.storage, services.jobs, answer["task_id"])
    assert view["status"] == "queued" and view["video_url"] is None


def test_models_listed_and_an_unknown_download_refused(services: Services) -> None:
    from app.usecases import models

    settings = services.engine_settings
    states = models.states(settings)
    assert list(states) == models.names() and models.names()
    assert all({"status", "download"} <= set(state) for state in states.values())
    with pytest.raises(NotFound) as caught:
        models.start_download(settings, "no-such-model")
    assert caught.value.details["models"] == models.names()
