"""app/usecases/models.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

import pytest

from app.services import Services
from models.errors import NotFound


def test_models_listed_and_an_unknown_download_refused(services: Services) -> None:
    from app.usecases import models

    settings = services.engine_settings
    states = models.states(settings)
    assert list(states) == models.names() and models.names()
    assert all({"status", "download"} <= set(state) for state in states.values())
    with pytest.raises(NotFound) as caught:
        models.start_download(settings, "no-such-model")
    assert caught.value.details["models"] == models.names()
