"""The job registry: one JobKind per kind, one explicit list, scoped additions for tests."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.jobs import job_kinds
from pipelines.tasks import JobContext, JobKind, JobRegistry, Stage


def _handler(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    return {}


def _stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, dict[str, Any]]
           ) -> dict[str, Any]:
    return {}


def _finish(params: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {}


def test_the_studio_lists_every_kind_once() -> None:
    registry = job_kinds()
    assert registry.names() == sorted([
        "diagnostics.staged", "diagnostics.tone", "image.process", "message.generate",
        "video.render", "voice.evolve", "voice.profile"])
    assert registry is job_kinds()  # built once
    message = registry["message.generate"]
    assert message.staged and message.handler is None and message.finish is not None
    assert list(message.steps) == [st.name for st in message.stages]
    assert registry["video.render"].handler is not None
    assert registry.steps("video.render") == ["prepare", "render", "subtitles", "store"]
    assert registry.steps("no.such.kind") == []


def test_a_kind_is_either_a_handler_or_stages_with_finish() -> None:
    with pytest.raises(ValueError, match="either"):
        JobKind("x", ["a"])
    with pytest.raises(ValueError, match="either"):
        JobKind("x", handler=_handler, stages=[Stage("a", _stage)], finish=_finish)
    with pytest.raises(ValueError, match="either"):
        JobKind("x", stages=[Stage("a", _stage)])
    with pytest.raises(ValueError, match="unknown/later"):
        JobKind("x", stages=[Stage("b", _stage, after=("a",)), Stage("a", _stage)],
                finish=_finish)
    staged = JobKind("x", stages=[Stage("a", _stage), Stage("b", _stage, after=("a",))],
                     finish=_finish)
    assert staged.steps == ("a", "b") and staged.stage("b").after == ("a",)


def test_added_kinds_last_for_the_block_only() -> None:
    registry = JobRegistry([JobKind("base", ["one"], handler=_handler)])
    extra = JobKind("test.extra", ["step"], handler=_handler)
    with registry.added(extra):
        assert "test.extra" in registry and registry.get("test.extra") is extra
        with pytest.raises(ValueError, match="twice"):
            with registry.added(JobKind("base", handler=_handler)):
                pass
    assert "test.extra" not in registry and "base" in registry
