"""What made a piece of speech, as typed records: the chain's run, a conversion, a synthesis.

Kept apart from :mod:`pipelines.voice.speech` so that the voices speaking through it (an
evolved voice) report the same way without importing the router that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.chain import Attempt, ChainResult
from pipelines.voice.ref import VOICE_TYPE_NAMES, VoiceKind


@dataclass(frozen=True)
class ChainReport:
    """Which engine of a chain did the work and what was passed over on the way."""

    backend: str
    attempts: tuple[Attempt, ...] = ()

    @classmethod
    def of(cls, result: ChainResult[Any]) -> ChainReport:
        return cls(result.backend, result.attempts)

    def _result(self) -> ChainResult[None]:
        """The chain's result without its value: it knows what a fallback is."""
        return ChainResult(None, self.backend, self.attempts)

    @property
    def fallback_used(self) -> bool:
        return self._result().fallback_used

    @property
    def fallback_method(self) -> str | None:
        return self._result().fallback_method

    def as_dict(self) -> dict[str, Any]:
        """The chain's own record (``backend``, ``fallback_used``, ``fallback_method``,
        ``attempts``)."""
        return self._result().report()


@dataclass(frozen=True)
class ConversionReport(ChainReport):
    """The converter chain's record plus what a person reads (``label``) and its time."""

    label: str = ""
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "label": self.label, "duration_s": self.duration_s}


@dataclass
class SynthesisReport:
    """What made a piece of speech: the API response, the job's stage record and the Voice
    tab's engine line all show it."""

    chain: ChainReport
    voice: str | None
    voice_type: VoiceKind
    language: str
    method: str = "tts"
    timings: dict[str, float] = field(default_factory=dict)
    conversion: ConversionReport | None = None
    profile_id: str | None = None
    duration: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    """What a particular voice adds to the record (an evolved voice: its label and scores)."""

    @property
    def backend(self) -> str:
        return self.chain.backend

    @property
    def fallback_used(self) -> bool:
        return self.chain.fallback_used or bool(self.conversion and self.conversion.fallback_used)

    @property
    def fallback_method(self) -> str | None:
        if self.chain.fallback_method or not self.fallback_used:
            return self.chain.fallback_method
        return self.conversion.backend if self.conversion else None

    @property
    def engine(self) -> str:
        """The engine that gave the audio its voice (the converter for a profile)."""
        return self.conversion.backend if self.conversion else self.chain.backend

    def as_dict(self) -> dict[str, Any]:
        """The JSON record (same keys as the API has always sent)."""
        out: dict[str, Any] = {
            **self.chain.as_dict(), "fallback_used": self.fallback_used,
            "fallback_method": self.fallback_method, "voice": self.voice, "voice_type": VOICE_TYPE_NAMES[self.voice_type], "language": self.language,
            "method": self.method, "timings": dict(self.timings)}
        if self.conversion is not None:
            out["conversion"] = self.conversion.as_dict()
        if self.conversion is not None or self.profile_id is not None:
            out["profile_id"] = self.profile_id
        out.update(self.details)
        out["duration"] = self.duration
        return out
