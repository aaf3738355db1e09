"""A self-test job: proves that a worker can take a job, report progress, honour a cancel
and write an artifact to storage that the app can serve. ``/health`` and the distributed
set-up tests use it; it needs no model.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import soundfile as sf

from pipelines.tasks import JobContext, job_kind

STEPS = ["prepare", "render", "store"]


@job_kind("diagnostics.tone", STEPS)
def tone_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Render a short tone in ``steps`` slices (``delay`` seconds each) and store it."""
    seconds = float(min(max(params.get("seconds", 1.0), 0.1), 10.0))
    slices = int(min(max(params.get("slices", 4), 1), 100))
    delay = float(min(max(params.get("delay", 0.0), 0.0), 5.0))
    rate = 24000
    ctx.progress(0.0, "prepare")
    ctx.step_done("prepare")
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    parts = np.array_split(t, slices)
    rendered = []
    for i, part in enumerate(parts):
        rendered.append(0.2 * np.sin(2 * np.pi * 440.0 * part))
        time.sleep(delay)
        ctx.progress(0.1 + 0.8 * (i + 1) / slices, "render")
    ctx.step_done("render")
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate(rendered), rate, format="WAV", subtype="PCM_16")
    key = ctx.storage.put(ctx.new_key("temp", "wav"), buffer.getvalue())
    ctx.progress(1.0, "store")
    ctx.step_done("store")
    return {"output_key": key, "duration": seconds, "sample_rate": rate}
