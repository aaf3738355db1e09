"""app/usecases/prosody.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

import pytest

from app.services import Services
from app.usecases import prosody
from models.errors import InvalidInput
from tests.fixtures.media import tone_wav


def test_prosody_settings_checked_then_result_stored(services: Services) -> None:
    with pytest.raises(InvalidInput) as caught:
        prosody.settings({}, "ogg")
    assert caught.value.code == "PROSODY_INVALID_PARAMS"
    params, fmt = prosody.settings({"pitch_shift": 2.0}, "WAV")
    done = prosody.adjust_recording(services.storage, tone_wav(), "tone.wav", params, fmt)
    assert done.key.startswith("prosody/") and services.storage.exists(done.key)
    answer = prosody.answer(services.storage, done)
    assert answer["format"] == "wav" and answer["output_key"] == done.key
    assert abs(answer["original_duration"] - 1.0) < 0.05
    assert len(prosody.preset_values("happy")) == len(prosody.SLIDERS)
