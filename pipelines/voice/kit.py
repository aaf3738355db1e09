"""The voice pipeline as one value: the engine chains and the profile store it works with.

The app builds one :class:`VoiceKit` from its Services (a worker from its job context), so
:func:`~pipelines.voice.speech.synthesize` and :func:`~pipelines.voice.create.create_profile` are
called with the chains already filled in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.base import Calibrating, Denoiser, ProgressFn, Speech, no_progress
from models.chain import FallbackChain
from pipelines.voice.create import create_profile
from pipelines.voice.options import VoiceOptions
from pipelines.voice.profiles import Profile, ProfileStore
from pipelines.voice.reports import SynthesisReport
from pipelines.voice.speech import VoiceChoice, synthesize


@dataclass
class VoiceKit:
    """Everything the voice pipeline needs. ``denoisers``: the ``denoise`` chain (None or
    no engine available: clips are used as recorded)."""

    tts: FallbackChain[Any]
    encoder: FallbackChain[Any]
    converters: FallbackChain[Any]
    store: ProfileStore
    cache_dir: Path | None = None
    denoisers: FallbackChain[Any] | None = None
    judges: FallbackChain[Any] | None = None
    """The ``naturalness`` chain: what a profile's serving measure hears naturalness with."""

    def denoiser(self) -> Denoiser | None:
        for engine in self.denoisers or ():
            if isinstance(engine, Denoiser) and engine.available()[0]:
                return engine
        return None

    def matcher(self) -> Calibrating | None:
        """The converter calibrated per profile (voice matching), when it works here."""
        for engine in self.converters:
            if isinstance(engine, Calibrating) and engine.available()[0]:
                return engine
        return None

    def synthesize(self, text: str, *, choice: VoiceChoice | None = None, language: str = "ja",
                   options: VoiceOptions | None = None, profiles: ProfileStore | None = None,
                   progress: ProgressFn = no_progress) -> tuple[Speech, SynthesisReport]:
        """``profiles``: the caller's view of the store (:meth:`ProfileStore.scoped`)."""
        return synthesize(text, tts=self.tts, choice=choice, language=language,
                          options=options, profiles=profiles or self.store,
                          converters=self.converters, progress=progress)

    def create_profile(self, clips: Sequence[tuple[bytes, str]], *, name: str,
                       language: str = "ja", owner: str | None = None,
                       profile_id: str | None = None,
                       progress: ProgressFn = no_progress) -> Profile:
        """``owner=`` stamps the profile with its user id (auth on)."""
        return create_profile(clips, name=name, language=language, store=self.store,
                              encoder=self.encoder, denoiser=self.denoiser(), tts=self.tts,
                              matcher=self.matcher(), converters=self.converters,
                              judges=self.judges, progress=progress, owner=owner,
                              profile_id=profile_id, cache_dir=self.cache_dir)
