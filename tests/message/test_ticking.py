"""A stage whose engine reports nothing still shows progress: estimates between real
reports, never backwards, never past the ceiling, and a cancel stops the ticking."""

from __future__ import annotations

import threading
import time

from models.errors import Cancelled
from pipelines.message import Ticking


class Recorder:
    job_id = "j1"

    def __init__(self) -> None:
        self.reports: list[tuple[float, str, str]] = []
        self.cancelled = False

    def progress(self, fraction: float, step: str) -> None:
        if self.cancelled:
            raise Cancelled()
        self.reports.append((fraction, step, threading.current_thread().name))


def test_quiet_stretches_get_estimates_and_real_reports_pass_through() -> None:
    ctx = Recorder()
    with Ticking(ctx, expected=0.5, every=0.05, ceiling=0.6) as ticker:  # type: ignore[arg-type]
        ticker.progress(0.05, "synthesize")
        time.sleep(0.6)  # an engine that says nothing
        ticker.progress(0.4, "convert")  # below the estimate by now: not shown lower
        ticker.progress(1.0, "done")
    fractions = [f for f, _, _ in ctx.reports]
    assert fractions == sorted(fractions)
    guesses = [f for f, _, who in ctx.reports if who == "stage-ticker"]
    assert len(guesses) >= 2
    assert all(0.05 < g < 0.6 for g in guesses)
    assert ctx.reports[-1][:2] == (1.0, "done")
    assert {s for _, s, who in ctx.reports if who == "stage-ticker"} == {"synthesize"}
    assert ticker.job_id == "j1"  # everything else is the stage's own context


def test_cancel_stops_the_ticker() -> None:
    ctx = Recorder()
    with Ticking(ctx, expected=1.0, every=0.02) as ticker:  # type: ignore[arg-type]
        ticker.progress(0.1, "work")
        ctx.cancelled = True
        time.sleep(0.2)
        assert not ticker._thread.is_alive()  # it met the cancel and stopped
    assert all(who != "stage-ticker" for _, _, who in ctx.reports)

