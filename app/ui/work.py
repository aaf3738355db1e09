"""A job record for work a tab does in the request itself (speech, cutout, prosody, a mix, a
render): the Jobs tab lists every kind of work, not only queued messages.

The record is written straight to the job store, never submitted to the queue: there is no
worker name on it, so ``TaskQueue.recover()`` leaves it alone, and a retry answers that the
kind cannot be re-run from the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any

from app.runner.jobs import Job, Jobs
from app.ui.owners import UiState, ui_owner
from models.errors import StudioError

Recorder = Callable[[str, dict[str, Any], Any], AbstractContextManager[Job]]
"""``recorded`` over one app's job store: ``record(kind, params, request)``."""

UI_KINDS = ("voice.synthesize", "voice.profile", "image.detect", "image.cutout",
            "prosody.adjust", "bgm.mix", "video.preview", "video.render")


@contextmanager
def recorded(jobs: Jobs, state: UiState, kind: str, params: dict[str, Any],
             request: Any = None) -> Iterator[Job]:
    """Record ``kind`` as processing in ``jobs`` (owned by the signed-in user, ``state``
    says who); completed when the block ends, failed (with the error code) when it raises.
    The block's exception always propagates."""
    job = jobs.create(kind, params, [kind.split(".")[-1]], owner=ui_owner(state, request))
    jobs.update(job.id, status="processing", started_at=time.time(), attempts=1,
                current_step=kind.split(".")[-1])
    try:
        yield job
    except StudioError as exc:
        jobs.update(job.id, status="failed", current_step="failed",
                error={"code": exc.code, "message": exc.message,
                       "message_ja": exc.message_ja})
        raise
    except BaseException as exc:
        jobs.update(job.id, status="failed", current_step="failed",
                error={"code": "UI_ERROR", "message": str(exc)[:300]})
        raise
    jobs.update(job.id, status="completed", progress=100.0, current_step="done",
                steps_completed=[kind.split(".")[-1]], steps_remaining=[])


def recorder(jobs: Jobs, state: UiState) -> Recorder:
    """:func:`recorded` bound to the job store and the UI state: what a tab gets."""
    return partial(recorded, jobs, state)
