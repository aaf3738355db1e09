"""The one list of job kinds the studio runs: the queue, the reaper and the Jobs tab read it.

The job modules are imported on first use, not at import of this module: they pull in the
engines, which a process that only serves files or health checks does not need.
"""

from __future__ import annotations

import functools

from pipelines.tasks import JobRegistry


@functools.cache
def job_kinds() -> JobRegistry:
    """Every job kind, built once per process."""
    from pipelines import diagnostics
    from pipelines.image import jobs as image_jobs
    from pipelines.message import chain as message
    from pipelines.video import jobs as video_jobs
    from pipelines.voice import evolve_jobs as voice_evolve_jobs
    from pipelines.voice import jobs as voice_jobs

    return JobRegistry([
        diagnostics.TONE_JOB,
        diagnostics.STAGED_JOB,
        image_jobs.JOB,
        video_jobs.JOB,
        voice_jobs.JOB,
        voice_evolve_jobs.JOB,
        message.JOB,
    ])
