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

from models.base import Calibrating
from models.chain import FallbackChain
from pipelines.tasks import JobContext, JobKind
from pipelines.voice.calibration import prepare_calibration
from pipelines.voice.create import PROFILE_STEPS
from pipelines.voice.engines import LANGUAGES
from pipelines.voice.kit import VoiceKit
from pipelines.voice.profiles import ProfileStore, public_profile
from pipelines.voice.ref import new_profile_id
from pipelines.voice.serving import ServingTools, naturalness_judge, prepare_serving

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
    """Make the first profile as quick as the next: load the speaker encoder and fill the
    calibration cache (every built-in voice saying the calibration sentence, with its
    embedding, then the serving measure's sentences and scores). Meant for a background
    thread when workers start; after the first start it only reads the cache from disk.
    It gives way to a profile being made (:class:`~pipelines.voice.calibration.ProfilesFirst`),
    which makes what it needs itself. Returns how many voices are cached."""
    matcher = next((e for e in chain("voice_converter")
                    if isinstance(e, Calibrating) and e.available()[0]), None)
    if matcher is None:
        return 0
    count = prepare_calibration(chain("tts"), matcher, cache_dir, languages)
    tools = ServingTools(chain("tts"), chain("voice_converter"), embed=matcher.embed,
                         encoder_name=matcher.encoder_name,
                         judge=naturalness_judge(chain("naturalness")), cache_dir=cache_dir)
    return count + prepare_serving(tools, languages)
