"""app/usecases/music.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

import pytest

from app.services import Services
from app.usecases import music
from models.errors import NotFound
from tests.fixtures.media import tone_wav


def test_music_tracks_and_mix_answer(services: Services) -> None:
    with pytest.raises(NotFound) as caught:
        music.track_audio(services.storage, "no-such-track", None)
    assert caught.value.code == "BGM_TRACK_NOT_FOUND"
    first = music.first_builtin()
    audio = music.track_audio(services.storage, first, None)
    assert audio.builtin and audio.data and audio.media_type.startswith("audio/")
    assert music.track_file(services.storage, "no-such-track", None) is None
    assert music.track_id("celebration", services.storage) is not None
    mixed = music.mix_voice(services.storage, tone_wav(2.0), "voice.wav", "none",
                            music.mix_options({"output_format": "wav"}))
    assert services.storage.exists(mixed.key) and mixed.track is None
    answer = music.mix_answer(services.storage, mixed, uploaded_music=True, music_name="x.mp3")
    assert answer["track"] == {"id": "upload", "title": "x.mp3"}
    assert music.mix_answer(services.storage, mixed)["track"] is None
