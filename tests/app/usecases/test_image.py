"""app/usecases/image.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

import pytest

from app.services import Services
from app.usecases import image
from models.errors import InvalidInput, NotFound
from tests.fixtures.media import png


def test_image_request_checked_before_any_upload_is_read() -> None:
    with pytest.raises(InvalidInput) as caught:
        image.check_request(None, "gif", 0.5)
    assert caught.value.code == "IMAGE_INVALID_FORMAT"
    ops, fmt = image.check_request(None, "JPEG", 0.5)
    assert fmt == "jpg" and ops  # the default operations


def test_image_processing_queued_over_store_and_queue(services: Services) -> None:
    data = png()
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
