"""Speech options (speed, pitch, intonation, volume, pauses): one model for every door.

The REST body's ``options``, the Voice tab's sliders and the jobs all build a
:class:`VoiceOptions`; a value out of range is ``VOICE_INVALID_OPTION`` (400) with the option,
its value and its range, whichever door it came through.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)

from models.base import SpeechRequest
from models.errors import InvalidInput
from pipelines.options import field_range

_RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "finite_number"})
"""pydantic error types that mean "a number, but not an allowed one"."""


class VoiceOptions(BaseModel):
    """Speech parameters and their ranges. Unknown keys are ignored (the REST body's
    ``options`` also carries ``voice``/``speaker``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    speed: float = Field(default=1.0, ge=0.5, le=2.0)
    pitch: float = Field(default=0.0, ge=-12.0, le=12.0, description="semitones")
    intonation: float = Field(default=1.0, ge=0.0, le=2.0)
    volume: float = Field(default=1.0, ge=0.0, le=2.0)
    pause: float = Field(default=1.0, ge=0.0, le=3.0, description="scales punctuation pauses")

    @model_validator(mode="wrap")
    @classmethod
    def _in_range(cls, data: Any, handler: ModelWrapValidatorHandler[VoiceOptions]
                  ) -> VoiceOptions:
        """A number out of range becomes the studio's own error (a StudioError passes
        through pydantic and FastAPI untouched); a value of the wrong type stays pydantic's
        validation error, as any other malformed field."""
        try:
            return handler(data)
        except ValidationError as exc:
            for error in exc.errors():
                if error["type"] in _RANGE_ERRORS and error["loc"]:
                    raise out_of_range(str(error["loc"][0]), error["input"]) from None
            raise

    def request(self, text: str, voice: str | None, language: str) -> SpeechRequest:
        return SpeechRequest(text=text, voice=voice, language=language, speed=self.speed,
                             pitch=self.pitch, intonation=self.intonation,
                             volume=self.volume, pause=self.pause)


def option_range(name: str) -> tuple[float, float]:
    """The (min, max) of an option, read from the model's own constraints."""
    bounds = field_range(VoiceOptions, name)
    if bounds is None:
        raise KeyError(f"option {name} has no range")  # every option has one
    return bounds


def out_of_range(name: str, value: Any) -> InvalidInput:
    low, high = option_range(name)
    return InvalidInput(
        f"Option {name}={value!r} is outside {low}..{high}.",
        code="VOICE_INVALID_OPTION",
        message_ja=f"オプション {name}={value!r} は {low}〜{high} の範囲外です。",
        details={"option": name, "value": value, "min": low, "max": high})
