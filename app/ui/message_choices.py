"""What the Message tab offers in its pickers: the voices (built-in and the caller's
profiles), the music, the moods and the sizes (the Video tab offers the same sizes)."""

from __future__ import annotations

from typing import Any

from gradio.i18n import I18nData

from app.storage import Storage
from app.ui.bgm import track_title
from app.ui.owners import UiState, ui_visibility
from app.ui.text import label, request_language, t
from app.usecases import music, prosody
from app.usecases import video as videos
from app.usecases.voices import Voices


def voice_choices(voices: Voices, state: UiState,
                  request: Any = None) -> list[tuple[str | I18nData, str]]:
    """Built-in voices of the available engines, then the caller's voice profiles."""
    choices: list[tuple[Any, str]] = [(t("word.auto"), "")]
    for engine in voices.engines():
        for v in engine["voices"]:
            choices.append((f"{v['name']} · {v['language']} · {label('gender.', v['gender'])} "
                            f"({engine['engine']})", v["id"]))
    for profile in voices.profiles(ui_visibility(state, request)).list():
        choices.append((f"★ {profile.name} ({t('message.voice_profile')})", profile.id))
    return choices


def bgm_choices(storage: Storage, state: UiState, request: Any = None) -> list[tuple[Any, str]]:
    tracks = music.list_tracks(storage, ui_visibility(state, request))
    lang = request_language(request)
    return [(t("message.music_none"), "none"),
            *[(f"{track_title(tr.id, tr.title, lang)} · {label('mood.', tr.mood)}", tr.id)
              for tr in tracks]]


def emotion_choices() -> list[tuple[Any, str]]:
    return [(t("word.auto"), "auto"), *[(t(f"mood.{name}"), name) for name in prosody.PRESETS]]


ASPECT_LABELS = {"1:1": "message.size_square", "9:16": "message.size_portrait",
                 "16:9": "message.size_landscape"}


def size_choices() -> list[tuple[str | I18nData, str]]:
    """(label, value) for every output size, as the Message and Video tabs offer them."""
    return [(t(ASPECT_LABELS[aspect]), name) for name, aspect in videos.SIZE_ASPECTS]


def default_bgm(storage: Storage) -> str:
    """The track the REST default (the "celebration" mood) resolves to, shown by its title."""
    return music.track_id("celebration", storage) or "none"
