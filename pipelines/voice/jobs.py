"""The queued ``voice.profile`` job: stored recordings in, a voice profile out.

Making a profile decodes, denoises, checks and embeds every clip and then searches the
voice-matching parameters: seconds of work that used to hold one HTTP request open. As a
job it reports each step (:data:`pipelines.voice.create.PROFILE_STEPS`), can be cancelled, and
survives the page being closed.

Params: ``clips`` (list of ``{"key", "filename"}``: uploads already in storage),
``name``, ``language``, ``owner``. The profile id is derived from the job id, so a job run
again after a crash overwrites its own half-written files instead of leaving a second
profile; a failed or cancelled run removes what it wrote, and ``profile.json`` (the only
thing that makes a profile listable) is written last.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Audio, Calibrating, Denoiser, NaturalnessJudge
from models.chain import FallbackChain
from pipelines.tasks import JobContext, JobKind
from pipelines.voice.calibration import ProfilesFirst, prepare_calibration
from pipelines.voice.create import PROFILE_STEPS
from pipelines.voice.engines import LANGUAGES
from pipelines.voice.kit import VoiceKit
from pipelines.voice.profiles import ProfileStore, public_profile
from pipelines.voice.ref import new_profile_id
from pipelines.voice.serving import (
    ServingTools,
    naturalness_guards,
    naturalness_judge,
    prepare_serving,
)

KIND = "voice.profile"


def profile_id_for(job_id: str) -> str:
    """The profile a job makes: stable across reruns of the same job."""
    return new_profile_id(hashlib.sha1(job_id.encode()).hexdigest()[:8])


def job_kit(ctx: JobContext) -> VoiceKit:
    """The voice pipeline over the worker's engines (its process-wide chains)."""
    return VoiceKit(tts=ctx.chain("tts"), encoder=ctx.chain("voice_encoder"),
                    converters=ctx.chain("voice_converter"), store=ProfileStore(ctx.storage),
                    cache_dir=ctx.engine_settings.cache_dir, denoisers=ctx.chain("denoise"),
                    judges=ctx.chain("naturalness"))


def create_profile_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    kit = job_kit(ctx)
    clips = [(ctx.storage.get(c["key"]), str(c.get("filename") or "")) for c in params["clips"]]
    profile_id = profile_id_for(ctx.job_id)
    done: list[str] = []

    def progress(fraction: float, step: str) -> None:
        # every step before this one is over (or skipped: no matcher, no search)
        for earlier in PROFILE_STEPS[:PROFILE_STEPS.index(step)]:
            if earlier not in done:
                done.append(earlier)
                ctx.step_done(earlier)
        ctx.progress(fraction, step)

    try:
        profile = kit.create_profile(
            clips, name=params["name"], language=params.get("language", "ja"),
            progress=progress, owner=params.get("owner"), profile_id=profile_id)
    except Exception:  # Cancelled too (a StudioError)
        kit.store.discard(profile_id)  # whatever this run wrote, nothing stays half made
        raise
    for step in PROFILE_STEPS:
        ctx.step_done(step)
    for clip in params["clips"]:  # the recordings live on only inside the profile
        ctx.storage.delete(clip["key"])
    return {"profile_id": profile.id, "profile": public_profile(profile)}


JOB = JobKind(KIND, PROFILE_STEPS, handler=create_profile_job)


def warm_up(chain: Callable[[str], FallbackChain[Any]], cache_dir: Path,
            languages: Sequence[str] = LANGUAGES) -> int:
    """Make the first profile as quick as the next: fill the calibration cache (every
    built-in voice saying the calibration sentence, with its embedding, then the serving
    measure's sentences and scores) and load the models a profile uses
    (:func:`ready_models`). Meant for a background thread when workers start; after the
    first start it reads the cache from disk and loads the models.
    It gives way to a profile being made (:class:`~pipelines.voice.calibration.ProfilesFirst`),
    which makes what it needs itself. Returns how many voices are cached."""
    matcher = next((e for e in chain("voice_converter")
                    if isinstance(e, Calibrating) and e.available()[0]), None)
    if matcher is None:
        return 0
    count = prepare_calibration(chain("tts"), matcher, cache_dir, languages)
    judge = naturalness_judge(chain("naturalness"))
    tools = ServingTools(chain("tts"), chain("voice_converter"), embed=matcher.embed,
                         encoder_name=matcher.encoder_name, judge=judge, cache_dir=cache_dir,
                         guards=naturalness_guards(chain("naturalness")))
    count += prepare_serving(tools, languages)
    ready_models(chain, matcher, judge)
    return count


def ready_models(chain: Callable[[str], FallbackChain[Any]], matcher: Calibrating,
                 judge: NaturalnessJudge | None) -> None:
    """Use each model a profile needs once, on a second of buzz, so each is loaded: with the
    cache full from an earlier start, the warm-up reads files and loads none of them, and
    the first profile paid for the loading (the speaker encoder alone ~3 s, of a 6-9 s
    profile). Gives way to a profile being made, which loads what it needs itself."""
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 20))
    syllables = 0.5 - 0.5 * np.cos(2 * np.pi * 4 * t)
    sample = Audio((0.2 * buzz * syllables).astype(np.float32), rate)
    ProfilesFirst.wait()
    matcher.embed(sample)
    if judge is not None:
        ProfilesFirst.wait()
        judge.naturalness(sample)
    for engine in chain("denoise"):
        if isinstance(engine, Denoiser) and engine.available()[0]:
            ProfilesFirst.wait()
            engine.denoise(sample)
            break
    ProfilesFirst.wait()
    chain("voice_encoder").run(lambda encoder: encoder.embed([sample]))
