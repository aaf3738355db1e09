"""English and Japanese, chosen from the browser's Accept-Language (Japanese first users,
English Space users)."""

from __future__ import annotations

SUPPORTED = ("en", "ja")


def pick_language(accept_language: str | None, default: str = "en") -> str:
    """The best of our languages for an ``Accept-Language`` header (q-values honoured)."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED and quality > 0:
            choices.append((-quality, index, primary))
    return sorted(choices)[0][2] if choices else default
