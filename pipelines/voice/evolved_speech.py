"""A profile's text said in its evolved voice (any language Kokoro speaks here), when the
search of :mod:`pipelines.voice.evolved` made one that serves that language; used by
:func:`pipelines.voice.speech.synthesize`.

Why apart from the search: saying a sentence needs the saved voice and the serving map, not
the scorer, the checkpoint or the verification that made them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from models.base import EVOLVED_VOICE, Speech, SpeechRequest, StyleSpace
from models.chain import Attempt, FallbackChain
from models.errors import BackendUnavailable
from pipelines.voice.evolved import LABEL, LABEL_JA, ProfileFiles, kokoro_of
from pipelines.voice.profiles import Profile, ProfileStore
from pipelines.voice.reports import ChainReport, SynthesisReport


def evolved_pack(tts: FallbackChain[Any], store: ProfileStore, profile: Profile,
                 language: str) -> tuple[StyleSpace, np.ndarray] | None:
    """The profile's evolved voice pack, when it has one that serves ``language``."""
    serves = (profile.evolution or {}).get("serves") or {}
    if profile.voice_source != "evolved" or serves.get(language) != "evolved":
        return None
    saved = ProfileFiles(store, profile.id).load_voice()
    if saved is None:
        return None
    try:
        kokoro = kokoro_of(tts)
    except BackendUnavailable:
        return None
    base, delta = saved
    return kokoro, kokoro.pack(base) + delta


def evolved_speech(kokoro: StyleSpace, pack: np.ndarray, request: SpeechRequest) -> Speech:
    return kokoro.styled(pack).synthesize(
        SpeechRequest(request.text, voice=EVOLVED_VOICE, language=request.language,
                      speed=request.speed, pitch=request.pitch,
                      intonation=request.intonation, volume=request.volume,
                      pause=request.pause))


def speak_evolved(tts: FallbackChain[Any], store: ProfileStore, profile: Profile,
                  request: SpeechRequest
                  ) -> tuple[Speech, SynthesisReport] | None:
    """``request`` said in the profile's evolved voice with the synthesis report, or None
    when the profile has no evolved voice that serves (the quick match speaks then)."""
    found = evolved_pack(tts, store, profile, request.language)
    if found is None:
        return None
    kokoro, pack = found
    started = time.perf_counter()
    speech = evolved_speech(kokoro, pack, request)
    seconds = time.perf_counter() - started
    evolution = profile.evolution or {}
    verified = evolution.get("verified") or {}
    report = SynthesisReport(
        ChainReport(kokoro.name, (Attempt(kokoro.name, "used", "", round(seconds, 3)),)),
        f"{EVOLVED_VOICE}:{profile.id}", "profile", request.language, method="evolved_voice",
        timings={"tts_s": round(seconds, 3)}, profile_id=profile.id,
        duration=round(speech.audio.duration, 3),
        details={"voice_source": "evolved", "label": LABEL, "label_ja": LABEL_JA,
                 "scores": {"held_out": (evolution.get("best") or {}).get("held_out"),
                            "quick_match_held_out":
                                (evolution.get("quick") or {}).get("held_out"),
                            "verified": {voice: (verified.get(voice) or {}).get("parts", {})
                                         .get(f"held_out_{request.language}")
                                         for voice in ("evolved", "quick")}}})
    return speech, report
