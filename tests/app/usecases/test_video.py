"""app/usecases/video.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

import pytest

from app.services import Services
from app.usecases import video
from models.errors import InvalidInput


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
