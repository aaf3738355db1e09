"""Shared pieces of the ops tests: job kinds that exercise every metric through the real
queue, fake engines for a chain that falls back, and a /metrics parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from app.services import Services
from models.chain import FallbackChain
from models.errors import BackendUnavailable, InvalidInput
from pipelines.tasks import JobKind


class DownEngine:
    """Says it is available, then turns out to be unreachable (a fallback is taken)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def available(self) -> tuple[bool, str]:
        return True, "configured"

    def work(self) -> str:
        raise BackendUnavailable(f"{self.name} is down", code="VOICE_ENGINE_DOWN")

    def close(self) -> None:
        pass


class UpEngine(DownEngine):
    def work(self) -> str:
        return f"made by {self.name}"


def message_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """A miniature message: synthesize through a chain that falls back, then render."""
    started = time.perf_counter()
    result = ctx.chain("tts").run(lambda engine: engine.work())
    ctx.observe_stage("synthesize", result.backend, time.perf_counter() - started)
    ctx.step_done("synthesize")
    ctx.observe_stage("render", "builtin", 0.01)
    ctx.step_done("render")
    ctx.step_done("store")  # timed by the queue itself
    return {"made_by": result.value}


def broken_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    ctx.step_done("prepare")
    raise InvalidInput("nothing to do", code="VIDEO_NOTHING")


def install_ops_jobs(services: Services) -> Iterator[None]:
    """Register the two job kinds and a tts chain of fakes (kokoro down, piper up)."""
    services._chains["tts"] = FallbackChain("tts", [DownEngine("kokoro"), UpEngine("piper")])
    with services.queue.kinds.added(
            JobKind("ops.message", ["synthesize", "render", "store"], handler=message_job),
            JobKind("ops.broken", ["prepare"], handler=broken_job)):
        yield


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, tuple(sorted(labels.items()))))
