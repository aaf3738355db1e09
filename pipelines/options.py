"""Option models' one door to the studio's errors.

Options (prosody, mixing, framing, a message) are pydantic models: ranges are
``Field(ge=..., le=...)``, choices are ``Literal``. :func:`parse` validates a mapping from a
form, JSON or the queue and turns pydantic's ``ValidationError`` into the area's
:class:`InvalidInput`, naming the field, what is allowed and what came in, in English and
Japanese, so REST, the UI and the jobs refuse bad input with the same error.

A model's cross-field checks raise :class:`InvalidInput` themselves (pydantic passes it on
untouched): their message depends on more than one field.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
from pydantic import AllowInfNan, BaseModel, BeforeValidator, ValidationError

from models.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

# Message templates: {field}, {value} (as typed, quoted), {low}, {high}, {allowed}.
Messages = Mapping[str, tuple[str, str]]
RANGE_MESSAGE = ("{field} must be a number from {low} to {high} (got {value}).",
                 "{field} は {low} から {high} の数値で指定してください（{value}）。")
CHOICE_MESSAGE = ("{field} must be one of {allowed}.", "{field} は {allowed} のいずれかです。")
FLAG_MESSAGE = ("{field} must be true or false.", "{field} は true か false です。")
OTHER_MESSAGE = ("{field} is not valid (got {value}).", "{field} の値が正しくありません（{value}）。")


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a number, not true or false")  # pydantic would read True as 1.0
    return value


Number = Annotated[float, AllowInfNan(False), BeforeValidator(_no_bool)]
"""A finite float that refuses booleans (``time_stretch=true`` is a mistake, not 1.0)."""


def field_range(model: type[BaseModel], name: str) -> tuple[float, float] | None:
    """The field's ``(ge, le)`` bounds, when it has both."""
    low = high = None
    for item in model.model_fields[name].metadata:
        if isinstance(item, annotated_types.Ge):
            low = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Le):
            high = float(item.le)  # type: ignore[arg-type]
    return (low, high) if low is not None and high is not None else None


def ranges(model: type[BaseModel], names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """``{name: (low, high)}`` of the named fields (for tables the API and UI show)."""
    found = {name: field_range(model, name) for name in names}
    return {name: bounds for name, bounds in found.items() if bounds is not None}


def field_choices(model: type[BaseModel], name: str) -> list[Any] | None:
    """The values a ``Literal`` (or bool) field allows; None for other fields."""
    annotation = model.model_fields[name].annotation
    if get_origin(annotation) in (Union, types.UnionType):  # X | None
        options = [a for a in get_args(annotation) if a is not type(None)]
        annotation = options[0] if len(options) == 1 else annotation
    if annotation is bool:
        return [True, False]
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return None


def jsonable(value: object) -> object:
    """``value`` as it can sit in an error's JSON details."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def invalid_field(model: type[BaseModel], name: str, value: object, *, code: str,
                  messages: Messages | None = None) -> InvalidInput:
    """The error for one bad field of ``model``: message, Japanese message and details
    (``field``, ``allowed`` as ``{"min", "max"}`` or a list, ``value``)."""
    bounds = field_range(model, name) if name in model.model_fields else None
    choices = field_choices(model, name) if name in model.model_fields else None
    allowed: object = None
    if bounds is not None:
        template = RANGE_MESSAGE
        allowed = {"min": bounds[0], "max": bounds[1]}
    elif choices is not None:
        template = FLAG_MESSAGE if choices == [True, False] else CHOICE_MESSAGE
        allowed = choices
    else:
        template = OTHER_MESSAGE
    english, japanese = (messages or {}).get(name, template)
    words = {"field": name, "value": repr(value),
             "low": f"{bounds[0]:g}" if bounds else "", "high": f"{bounds[1]:g}" if bounds else "",
             "allowed": ", ".join(str(c) for c in choices or ())}
    details: dict[str, object] = {"field": name, "value": jsonable(value)}
    if allowed is not None:
        details["allowed"] = allowed
    return InvalidInput(english.format(**words), code=code, message_ja=japanese.format(**words),
                        details=details)


def parse(model: type[M], raw: Mapping[str, Any], *, code: str,
          codes: Mapping[str, str] | None = None, messages: Messages | None = None) -> M:
    """``raw`` validated as ``model``; the first bad field raises :class:`InvalidInput` with
    ``code`` (or the field's own code from ``codes``) and the field's message from
    ``messages`` (else a range, choice or true/false message)."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "params"
        value = first.get("input", raw.get(name))
        raise invalid_field(model, name, value, code=(codes or {}).get(name, code),
                            messages=messages) from exc
