"""Making a voice profile from 1-5 recordings, in the steps of :data:`PROFILE_STEPS`."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from models.base import (
    Audio,
    Calibrating,
    Denoiser,
    ProgressFn,
    VoiceTarget,
    cores,
    no_progress,
)
from models.chain import ChainExhausted, FallbackChain
from models.errors import InvalidInput
from models.speech.dsp import normalize_peak
from pipelines.voice.calibration import ProfilesFirst, calibrate_matching
from pipelines.voice.clips import (
    ClipRejected,
    ClipReport,
    decode_clip,
    denoised_clip,
    finish_clip,
    rejected,
)
from pipelines.voice.denoising import denoise_clips
from pipelines.voice.engines import LANGUAGES, speech_unavailable
from pipelines.voice.profiles import Profile, ProfileStore, now, validate_name
from pipelines.voice.serving import (
    ServingTools,
    measure_serving,
    naturalness_guards,
    naturalness_judge,
    prepare_converters,
)

MAX_CLIPS = 5
REFERENCE_MAX_S = 30.0


def _reference_from(clips: Sequence[Audio]) -> Audio:
    rate = clips[0].sample_rate
    gap = np.zeros(int(0.3 * rate), np.float32)
    pieces: list[np.ndarray] = []
    total = 0
    for clip in clips:
        if total >= REFERENCE_MAX_S * rate:
            break
        pieces.extend([clip.samples, gap])
        total += len(clip.samples) + len(gap)
    samples = np.concatenate(pieces[:-1])[: int(REFERENCE_MAX_S * rate)]
    return Audio(normalize_peak(samples), rate)


PROFILE_STEPS = ("decode", "denoise", "checks", "embedding", "matching search", "save")
"""The steps of making a profile, as the job and the Voice tab show them."""
_STEP_SPAN = {"decode": (0.0, 0.05), "denoise": (0.05, 0.5), "checks": (0.5, 0.55),
              "embedding": (0.55, 0.62), "matching search": (0.62, 0.97), "save": (0.97, 1.0)}
"""Each step's share of the progress bar (measured: denoising and the search dominate)."""


def _step_progress(progress: ProgressFn, step: str, fraction: float = 0.0) -> None:
    low, high = _STEP_SPAN[step]
    progress(low + (high - low) * fraction, step)


def _reject_first(reports: Sequence[ClipReport]) -> None:
    rejected = [r for r in reports if r.verdict == "rejected"]
    if rejected:
        first = rejected[0]
        raise InvalidInput(first.message, code=first.code or "VOICE_SAMPLE_INVALID",
                           message_ja=first.message_ja,
                           details={"clip": first.index, "filename": first.filename,
                                    "clips": [r.as_dict() for r in reports]})


def validate_profile_request(clips: Sequence[Any], name: str, language: str) -> str:
    """The checks that need no audio work (done before a job is queued); the clean name."""
    name = validate_name(name)
    if language not in LANGUAGES:
        raise InvalidInput(f"Unsupported language {language!r}.", code="VOICE_INVALID_LANGUAGE",
                           message_ja=f"未対応の言語 {language!r} です。",
                           details={"allowed": list(LANGUAGES)})
    if not 1 <= len(clips) <= MAX_CLIPS:
        raise InvalidInput(f"Give 1-{MAX_CLIPS} recordings (3 recommended); got {len(clips)}.",
                           code="VOICE_SAMPLE_COUNT",
                           message_ja=f"録音は 1〜{MAX_CLIPS} 個にしてください（推奨 3 個）。",
                           details={"count": len(clips), "max": MAX_CLIPS})
    return name


def refuse_undecodable(clips: Sequence[tuple[bytes, str]]) -> None:
    """The decode step of each clip, before a job is queued: a clip that is not audio (or
    too large or long to decode) is refused with the error its job would give
    (``VOICE_SAMPLE_AUDIO_*``, every clip's report in ``details.clips``), so nothing is
    stored for it. A clip that decodes is left for the job to judge (length, silence, noise:
    those are judged on the denoised audio)."""
    reports = [ClipReport(index=i, filename=f or f"clip {i + 1}") for i, (_, f) in enumerate(clips)]
    for (data, _), report in zip(clips, reports, strict=True):
        try:
            decode_clip(data, report)
        except ClipRejected:
            pass  # decodes: the job judges it
        except InvalidInput as exc:
            rejected(report, exc)
    _reject_first(reports)


def create_profile(
    clips: Sequence[tuple[bytes, str]],
    *,
    name: str,
    language: str = "ja",
    store: ProfileStore,
    encoder: FallbackChain[Any],
    denoiser: Denoiser | None = None,
    tts: FallbackChain[Any] | None = None,
    matcher: Calibrating | None = None,
    converters: FallbackChain[Any] | None = None,
    judges: FallbackChain[Any] | None = None,
    progress: ProgressFn = no_progress,
    owner: str | None = None,
    profile_id: str | None = None,
    cache_dir: Path | None = None,
) -> Profile:
    """1-5 recordings (bytes, filename) -> a stored profile, in the steps of
    :data:`PROFILE_STEPS` (``progress`` gets each step's name). Each clip is decoded, made
    mono 24 kHz, denoised, trimmed and checked; the first bad clip raises its
    ``VOICE_SAMPLE_*`` error (``details.clips`` has every clip's report). With ``tts`` and
    ``matcher`` the profile is calibrated for voice matching (nearest built-in voice and
    Praat parameters, chosen by measured similarity; what does not depend on the new voice
    is cached under ``cache_dir``); with ``converters`` too, each language's serving voice
    is chosen on nearness, naturalness (by the first predictor of ``judges``) and words
    (:mod:`pipelines.voice.serving`). ``profile_id`` (a job's own) makes a rerun overwrite
    rather than duplicate; nothing is listed until every file is written. While it runs,
    the warm-up waits (:class:`~pipelines.voice.calibration.ProfilesFirst`)."""
    name = validate_profile_request(clips, name, language)
    with ProfilesFirst.measuring():  # the warm-up waits while a profile is made
        reports = [ClipReport(index=i, filename=f or f"clip {i + 1}")
                   for i, (_, f) in enumerate(clips)]
        audios: list[Audio | None] = [None] * len(clips)
        for index, (data, _) in enumerate(clips):
            _step_progress(progress, "decode", index / len(clips))
            try:
                audios[index] = decode_clip(data, reports[index])
            except (ClipRejected, InvalidInput) as exc:
                rejected(reports[index], exc)
        _reject_first(reports)
        # Clips are denoised on every core at once, in equal shares (the C denoiser releases
        # the GIL).
        _step_progress(progress, "denoise")
        if denoiser is not None:
            decoded = [a for a in audios if a is not None]  # each other one was refused
            workers = min(cores(), 4)
            denoised = denoise_clips(decoded, denoiser, workers,
                                     lambda done: _step_progress(progress, "denoise", done))
            audios[:] = [denoised_clip(a, r) for a, r in zip(denoised, reports, strict=True)]
        _step_progress(progress, "checks")
        for index, audio in enumerate(audios):
            assert audio is not None
            try:
                audios[index] = finish_clip(audio, reports[index])
            except ClipRejected as exc:
                rejected(reports[index], exc)
        _reject_first(reports)
        cleaned = [a for a in audios if a is not None]
        _step_progress(progress, "embedding")
        try:
            embedded = encoder.run(lambda e: e.embed(cleaned))
        except ChainExhausted as exc:
            raise speech_unavailable(exc) from exc
        embedding = np.asarray(embedded.value, np.float32)
        reference = _reference_from(cleaned)
        profile = Profile(
            id=profile_id or store.new_id(),
            name=name,
            language=language,
            created_at=now(),
            updated_at=now(),
            encoder=embedded.backend,
            embedding_dim=int(embedding.shape[0]),
            denoised=denoiser is not None,
            sample_stats={
                "count": len(cleaned),
                "total_seconds": round(sum(a.duration for a in cleaned), 2),
                "reference_seconds": round(reference.duration, 2),
                "clips": [r.as_dict() for r in reports],
            },
            owner=owner,
        )
        if tts is not None and matcher is not None:
            _step_progress(progress, "matching search")
            key = f"{profile.id}:{profile.updated_at}"
            with ThreadPoolExecutor(1, thread_name_prefix="prepare") as pool:
                # the filters learn the person's timbre while the matching is calibrated
                prepared = pool.submit(prepare_converters, converters or (),
                                       VoiceTarget(key, reference, embedding))
                profile.matching = calibrate_matching(tts, matcher, embedding, reference,
                                                      language, cache_dir=cache_dir)
                prepared.result()
            if converters is not None:
                _step_progress(progress, "matching search", 0.3)
                target = VoiceTarget(key, reference, embedding, profile.matching)
                tools = ServingTools(tts, converters, embed=matcher.embed,
                                     encoder_name=matcher.encoder_name,
                                     judge=naturalness_judge(judges), cache_dir=cache_dir,
                                     guards=naturalness_guards(judges))
                languages = (language, *(lang for lang in LANGUAGES if lang != language))
                profile.serving = measure_serving(tools, languages, embedding, target)
        _step_progress(progress, "save")
        store.save(profile, reference, embedding)
        progress(1.0, "save")
        return profile

