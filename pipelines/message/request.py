"""What a person asks the one-click message for, validated once before anything is queued.

REST, the Message tab and the job's stages read the same :class:`MessageRequest`: the door
builds it with :meth:`MessageRequest.validated`, the queue stores :meth:`MessageRequest.params`
(JSON) and each stage reads it back with :meth:`MessageRequest.from_params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.media import LIMITS, validate_text
from pipelines.options import Number, parse
from pipelines.sizes import DEFAULT, OutputSize
from pipelines.sound.prosody import Emotion

Language = Literal["ja", "en"]
Background = Literal["blur", "transparent", "solid", "builtin"]
NO_MUSIC = ("", "none", "off")

CODES = {"language": "VOICE_INVALID_LANGUAGE", "emotion": "PROSODY_INVALID_PARAMS",
         "bgm_volume": "BGM_INVALID_PARAMS", "background": "IMAGE_INVALID_FRAMING"}
MESSAGES = {
    "language": ("Unsupported language {value}.", "未対応の言語 {value} です。"),
    "emotion": ("Unknown mood {value}; use one of {allowed}.",
                "雰囲気 {value} は使えません（{allowed}）。"),
    "bgm_volume": ("bgm_volume must be between 0 and 1.",
                   "bgm_volume は 0〜1 で指定してください。"),
    "background": ("Unknown background {value}.", "背景 {value} には対応していません。"),
}


def guess_language(text: str) -> Language:
    """Japanese when the text has any kana or kanji, else English."""
    return "ja" if any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff"
                       for ch in text) else "en"


class MessageRequest(BaseModel):
    """What a person asks for; validated before anything is queued."""

    model_config = ConfigDict(frozen=True)

    image_key: str
    text: str
    voice: str | None = None  # built-in voice id, "voicevox:<style>", or a profile id
    language: Language = "ja"  # guessed from the text when not given
    emotion: Emotion = "auto"
    bgm: str = "celebration"  # track id, mood, or "none"
    bgm_volume: Number = Field(default=0.25, ge=0.0, le=1.0)
    size: OutputSize = DEFAULT
    subtitles: bool = False
    background: Background = "blur"
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: object) -> object:
        """Empty form fields mean the default; a missing language is guessed from the text."""
        if not isinstance(raw, Mapping):
            return raw
        data = {k: v for k, v in raw.items() if v is not None}
        for name in ("emotion", "background", "size", "language", "voice"):
            if not str(data.get(name, "")).strip():
                data.pop(name, None)
        if "language" not in data:
            data["language"] = guess_language(str(raw.get("text") or ""))
        return data

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return validate_text(None if value is None else str(value), area="VOICE", limits=LIMITS)

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: object) -> OutputSize:
        # VIDEO_INVALID_SIZE naming the allowed sizes
        return OutputSize.parse(value if isinstance(value, OutputSize) else str(value))

    @field_validator("voice", "bgm", "emotion", "background", mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> str:
        return str(value).strip()

    @classmethod
    def validated(cls, **raw: Any) -> MessageRequest:
        """From a door's fields; the first bad one raises its area's InvalidInput."""
        return parse(cls, raw, code="VIDEO_INVALID_REQUEST", codes=CODES, messages=MESSAGES)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MessageRequest:
        """Back from the queue's JSON (:meth:`params`)."""
        return cls.validated(**params)

    def params(self) -> dict[str, Any]:
        """As the queue stores it (JSON): the size by name."""
        return {**self.model_dump(exclude={"size"}), "size": self.size.name}

    @property
    def wants_music(self) -> bool:
        return self.bgm.lower() not in NO_MUSIC
