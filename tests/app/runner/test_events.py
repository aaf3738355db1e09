"""The job runner's events (``app.runner.events``): receivers hear the kinds they asked for,
a receiver that fails stops neither the others nor the sender, and disconnecting ends it."""

from __future__ import annotations

from app.runner.events import Event, Events, JobFinished, StageDone, StepDone


def test_receivers_hear_their_kinds_and_a_failing_one_stops_nobody() -> None:
    events = Events()
    everything: list[Event] = []
    stages: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("a listener's own bug")

    events.connect(broken)
    events.connect(everything.append)
    events.connect(stages.append, StageDone)
    assert events.listening(StageDone) and events.listening(JobFinished)
    done = StageDone("render", "builtin", 1.5)
    events.send(done)
    events.send(StepDone("store", 0.2))
    assert everything == [done, StepDone("store", 0.2)]
    assert stages == [done]
    events.disconnect(everything.append)
    events.disconnect(broken)
    events.send(JobFinished("k", "completed", 2.0))
    assert len(everything) == 2 and stages == [done]
    assert not events.listening(JobFinished) and events.listening(StageDone)
