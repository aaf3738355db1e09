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

from models.errors import BackendFailed
from pipelines.tasks import JobContext, JobKind, Stage

STEPS = ["prepare", "render", "store"]


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


TONE_JOB = JobKind("diagnostics.tone", STEPS, handler=tone_job)


# A staged self-test: two branches side by side, then a join — the shape of a message job.


def _branch(name: str, hz: float) -> Stage:
    def run(ctx: JobContext, params: dict[str, Any], outputs: dict[str, dict[str, Any]]
            ) -> dict[str, Any]:
        rate, seconds = 24000, float(min(max(params.get("seconds", 0.5), 0.1), 10.0))
        slices = int(min(max(params.get("slices", 4), 1), 100))
        t = np.arange(int(seconds * rate), dtype=np.float32) / rate
        for i in range(slices):
            time.sleep(float(min(max(params.get("delay", 0.0), 0.0), 5.0)))
            ctx.progress((i + 1) / slices, f"tone {hz:.0f} Hz")
        gate = params.get("fail_until_key")  # fails at the end, as a real stage would
        if params.get("fail_stage") == name and gate and not ctx.storage.exists(gate):
            raise BackendFailed(f"Stage {name} failed on purpose (diagnostics).",
                                code="QUEUE_DIAGNOSTIC_FAILURE")
        buffer = io.BytesIO()
        sf.write(buffer, 0.2 * np.sin(2 * np.pi * hz * t), rate, format="WAV")
        return {"key": ctx.storage.put(ctx.new_key("temp", "wav"), buffer.getvalue()),
                "backend": "diagnostics"}

    return Stage(name, run, weight=1.0, retries=0)


def _join(ctx: JobContext, params: dict[str, Any], outputs: dict[str, dict[str, Any]]
          ) -> dict[str, Any]:
    parts = [sf.read(io.BytesIO(ctx.storage.get(outputs[n]["key"])), dtype="float32")[0]
             for n in ("low", "high")]
    buffer = io.BytesIO()
    sf.write(buffer, np.concatenate(parts), 24000, format="WAV")
    ctx.progress(1.0, "join")
    return {"key": ctx.storage.put(ctx.new_key("temp", "wav"), buffer.getvalue())}


STAGED_JOB = JobKind(
    "diagnostics.staged",
    stages=[_branch("low", 220.0), _branch("high", 440.0),
     Stage("join", _join, after=("low", "high"), weight=0.5),
     Stage("optional", _join, after=("join",), when=lambda p: bool(p.get("with_optional")))],
    finish=lambda params, outputs: {"output_key": outputs["join"]["key"]},
)
