"""A stage whose engine reports nothing still shows progress: estimates between real
reports, never backwards, never past the ceiling, and a cancel stops the ticking."""

from __future__ import annotations

import threading

from models.errors import Cancelled
from pipelines.message.chain import Ticking


class Recorder:
    job_id = "j1"

    def __init__(self) -> None:
        self.reports: list[tuple[float, str, str]] = []
        self.cancelled = False
        self.refused = 0  # reports met with the cancel
        self._changed = threading.Condition()

    def progress(self, fraction: float, step: str) -> None:
        if self.cancelled:
            self.refused += 1
            raise Cancelled()
        with self._changed:
            self.reports.append((fraction, step, threading.current_thread().name))
            self._changed.notify_all()

    def guesses(self) -> list[float]:
        return [f for f, _, who in self.reports if who == "stage-ticker"]

    def wait_for_guesses(self, count: int) -> None:
        """Block until the ticker has reported ``count`` estimates (a hang guard only)."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.guesses()) >= count, timeout=60)


def test_quiet_stretches_get_estimates_and_real_reports_pass_through() -> None:
    ctx = Recorder()
    with Ticking(ctx, expected=0.5, every=0.05, ceiling=0.6) as ticker:  # type: ignore[arg-type]
        ticker.progress(0.05, "synthesize")
        ctx.wait_for_guesses(2)  # an engine that says nothing: the ticker estimates
        ticker.progress(0.01, "convert")  # below the estimate: not shown lower
        ticker.progress(1.0, "done")
    fractions = [f for f, _, _ in ctx.reports]
    assert fractions == sorted(fractions)
    guesses = ctx.guesses()
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
        ticker._thread.join(timeout=60)  # returns when the ticker met the cancel
        assert not ticker._thread.is_alive()  # it met the cancel and stopped
    assert ctx.refused == 1  # its one report after the cancel was refused, then no more

