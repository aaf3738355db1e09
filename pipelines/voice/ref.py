"""What a caller means by a voice, parsed once: a built-in voice, a VOICEVOX style or a profile.

Every door spells a voice as one string (``"jf_alpha"``, ``"jf_alpha:0.6+jm_kumo:0.4"``,
``"voicevox:3"``, ``"voice_1a2b3c4d"``); this is the one place that reads the spelling, so
the message job, the use cases, the REST routes and the UI agree on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from models.errors import InvalidInput

VoiceKind = Literal["builtin", "style", "profile"]
"""A built-in voice (or blend), a style of a speech service addressed by style ids, a profile."""
VOICEVOX_PREFIX = "voicevox:"
PROFILE_PREFIX = "voice_"
"""New profiles' ids: ``voice_`` and 8 hex digits (no engine's name: which converter serves a
profile is measured per language, and is seldom OpenVoice)."""
LEGACY_PROFILE_PREFIX = "openvoice_"
"""Profiles made before the rename: their ids (in storage, in clients) keep working."""
PROFILE_PREFIXES = (PROFILE_PREFIX, LEGACY_PROFILE_PREFIX)
PROFILE_ID = re.compile(r"^(?:voice|openvoice)_[0-9a-f]{8}$")
"""A stored voice profile's id, under either prefix."""


def new_profile_id(hex8: str) -> str:
    """The id of a new profile from 8 hex digits (random, or derived from a job's id)."""
    return PROFILE_PREFIX + hex8


VOICE_TYPE_NAMES: dict[VoiceKind, str] = {"builtin": "builtin", "profile": "profile",
                                          "style": "voicevox"}
"""How the REST API's ``voice_type`` names each kind."""
_VOICE_TYPE_ALIASES: dict[str, VoiceKind] = {
    "builtin": "builtin", "built-in": "builtin", "preset": "builtin", "default": "builtin",
    "standard": "builtin", "kokoro": "builtin", "profile": "profile", "custom": "profile",
    "clone": "profile", "cloned": "profile", "openvoice": "profile", "voicevox": "style"}
"""The spellings of ``voice_type`` clients send (older clients named an engine)."""


def normalize_voice_type(voice_type: str | None) -> VoiceKind:
    key = (voice_type or "builtin").strip().lower()
    if key not in _VOICE_TYPE_ALIASES:
        raise InvalidInput(f"Unknown voice_type {voice_type!r}.", code="VOICE_INVALID_VOICE_TYPE",
                           message_ja=f"voice_type {voice_type!r} は不正です。",
                           details={"allowed": list(VOICE_TYPE_NAMES.values())})
    return _VOICE_TYPE_ALIASES[key]


@dataclass(frozen=True)
class VoiceRef:
    """A parsed voice. ``id`` is the built-in voice (or blend), the VOICEVOX style id as a
    string, or the profile id; ``str()`` gives the spelling back."""

    kind: VoiceKind
    id: str

    @classmethod
    def parse(cls, voice: str | None) -> VoiceRef | None:
        """None for "no voice asked" (the engine's default); raises VOICE_UNKNOWN_VOICE for a
        VOICEVOX style that is not a number."""
        text = (voice or "").strip()
        if not text:
            return None
        if text.startswith(LEGACY_PROFILE_PREFIX) or PROFILE_ID.match(text):
            return cls("profile", text)
        if text.startswith(VOICEVOX_PREFIX):
            style = text.removeprefix(VOICEVOX_PREFIX)
            if not style.isdigit():
                raise InvalidInput(f"A VOICEVOX speaker is a style id number, not {voice!r}.",
                                   code="VOICE_UNKNOWN_VOICE",
                                   message_ja="VOICEVOX の speaker はスタイル ID（数値）です。",
                                   details={"field": "voice", "voice": voice})
            return cls("style", style)
        return cls("builtin", text)

    @classmethod
    def voicevox(cls, style: int | str) -> VoiceRef:
        return cls("style", str(style))

    @property
    def is_profile(self) -> bool:
        return self.kind == "profile"

    def __str__(self) -> str:
        return VOICEVOX_PREFIX + self.id if self.kind == "style" else self.id
