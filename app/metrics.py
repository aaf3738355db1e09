"""Prometheus metrics: one registry per app, so tests and several apps in a process agree.

Two kinds of numbers live here:

* **events**, counted in the process where they happen: HTTP requests (the middleware),
  pipeline stage durations, synthesis and render latency, fallbacks, finished jobs. A
  separate ``huey_consumer`` process has its own :class:`Metrics` and serves it on
  ``STUDIO_METRICS_PORT`` (see ``app/worker.py``); Prometheus sums over all targets.
* **state**, read at scrape time from what every process shares, so only the app reports
  it (no double counting): jobs by status, queue depth, live workers from their heartbeat
  records, engine availability and circuit state, free disk in the data dir.

Recording API for pipeline and router code (all thread-safe, all cheap):

* ``ctx.observe_stage(stage, backend, seconds)`` inside a job handler (the job runner,
  ``app.runner``, sends it here as an event); stages the handler does not time itself are
  timed between ``ctx.step_done`` calls with ``backend="unknown"``.
* ``request.app.state.metrics.observe_stage(stage, backend, seconds)`` in a router that does
  the work synchronously; ``.observe_chain(capability, report)`` with a
  ``ChainResult.report()`` to count a fallback (``ctx.chain(...)`` in a job counts its
  fallbacks by itself).

Stage names in :data:`SYNTHESIS_STAGES` / :data:`RENDER_STAGES` also feed the synthesis and
render latency histograms the alerts watch.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.runner.events import Event, Events, JobFinished, StageDone, StepDone
from app.runner.heartbeat import WorkerRecord
from models.chain import ChainResult

log = logging.getLogger("studio.metrics")

SYNTHESIS_STAGES = frozenset({"synthesize", "tts"})
RENDER_STAGES = frozenset({"render", "talking_head"})
UNKNOWN_BACKEND = "unknown"

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
SYNTHESIS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)
RENDER_BUCKETS = (1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800)
CIRCUIT_OPEN_STATES = frozenset({"open"})


class GaugeSource(Protocol):
    """What the state gauges read at scrape time: worker heartbeats, engine rows (with their
    circuits), the data dir (its free disk). The app's ``Services`` gives all three."""

    def workers(self) -> tuple[Sequence[WorkerRecord], Sequence[WorkerRecord]]:
        """(live, stale) worker records, newest beat first."""
        ...

    def inventory(self) -> Mapping[str, Sequence[Mapping[str, Any]]]: ...

    @property
    def data_dir(self) -> Path: ...


class Observed(GaugeSource, Protocol):
    """What :meth:`Metrics.bind` takes: the job runner's events, and the shared state."""

    @property
    def events(self) -> Events: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "studio_http_requests_total", "HTTP requests",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "studio_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.jobs = Gauge("studio_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.queue_depth = Gauge("studio_queue_depth", "Tasks waiting in the queue",
                                 registry=self.registry)
        self.engine_available = Gauge(
            "studio_engine_available", "1 when an engine is available",
            ["capability", "engine"], registry=self.registry)
        self.fallbacks = Counter(
            "studio_fallbacks_total", "Results made by a fallback engine",
            ["capability", "engine"], registry=self.registry)
        self.stage_duration = Histogram(
            "studio_stage_duration_seconds", "Time one pipeline stage took",
            ["stage", "backend"], registry=self.registry, buckets=STAGE_BUCKETS)
        self.synthesis_duration = Histogram(
            "studio_synthesis_duration_seconds", "Speech synthesis latency per engine",
            ["backend"], registry=self.registry, buckets=SYNTHESIS_BUCKETS)
        self.render_duration = Histogram(
            "studio_render_duration_seconds", "Talking-head render latency per engine",
            ["backend"], registry=self.registry, buckets=RENDER_BUCKETS)
        self.jobs_finished = Counter(
            "studio_jobs_finished_total", "Jobs that reached a final status in this process",
            ["kind", "status"], registry=self.registry)
        self.job_duration = Histogram(
            "studio_job_duration_seconds", "Time a job ran on a worker",
            ["kind"], registry=self.registry, buckets=RENDER_BUCKETS)
        self.build_info = Gauge("studio_build_info", "Always 1; the version as a label",
                                ["version"], registry=self.registry)
        self._bound: list[Events] = []

    # -- recording (any thread) ----------------------------------------------------------

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        """One finished pipeline stage; ``backend`` is the engine that did it."""
        backend = backend or UNKNOWN_BACKEND
        seconds = max(float(seconds), 0.0)
        self.stage_duration.labels(stage, backend).observe(seconds)
        if stage in SYNTHESIS_STAGES:
            self.synthesis_duration.labels(backend).observe(seconds)
        elif stage in RENDER_STAGES:
            self.render_duration.labels(backend).observe(seconds)

    def observe_step(self, stage: str, seconds: float) -> None:
        """A stage timed by the queue between ``step_done`` calls (engine unknown): it feeds
        the stage histogram only, never the synthesis/render latency the alerts watch."""
        self.stage_duration.labels(stage, UNKNOWN_BACKEND).observe(max(float(seconds), 0.0))

    def observe_chain(self, capability: str, report: Mapping[str, Any]) -> None:
        """Count a fallback from a ``ChainResult.report()`` (no-op when the first engine ran)."""
        if report.get("fallback_used"):
            self.fallbacks.labels(capability, str(report.get("backend"))).inc()

    def observe_job(self, kind: str, status: str, seconds: float | None = None) -> None:
        """A job reached ``status`` (completed | failed | cancelled) after ``seconds``."""
        self.jobs_finished.labels(kind, status).inc()
        if seconds is not None:
            self.job_duration.labels(kind).observe(max(seconds, 0.0))

    # -- wiring ----------------------------------------------------------------------

    def bind(self, source: Observed, *, state: bool = True) -> None:
        """Subscribe to a process's job runner, and read the shared state it gives.

        Jobs run by this process's consumer report their stages, steps, engine chains and
        outcomes here as events. With ``state`` (the app; not a worker process) the shared
        state is read at each scrape.
        """
        from app.config import VERSION

        self.build_info.labels(VERSION).set(1)
        source.events.connect(self.on_event)
        self._bound.append(source.events)
        if state:
            self.registry.register(StateCollector(source))

    def unbind(self) -> None:
        for events in self._bound:
            events.disconnect(self.on_event)
        self._bound.clear()

    def on_event(self, event: Event) -> None:
        """What the job runner tells (``app.runner.events``), counted."""
        if isinstance(event, JobFinished):
            self.observe_job(event.kind, event.status, event.seconds)
        elif isinstance(event, StageDone):
            self.observe_stage(event.stage, event.backend, event.seconds)
        elif isinstance(event, StepDone):
            self.observe_step(event.step, event.seconds)
        elif isinstance(event.outcome, ChainResult):  # a chain that found no engine: no count
            self.observe_chain(event.capability, event.outcome.report())


class StateCollector(Collector):
    """Gauges read at scrape time from what all processes share (the app only)."""

    def __init__(self, source: GaugeSource) -> None:
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._workers()
            yield from self._circuits()
            yield from self._disk()
        except Exception:  # a broken probe must not break /metrics
            log.exception("state metrics failed")

    def _workers(self) -> Iterator[GaugeMetricFamily]:
        live, stale = self.source.workers()
        count = GaugeMetricFamily("studio_workers_live",
                                  "Worker processes whose heartbeat is fresh")
        count.add_metric([], len(live))
        yield count
        last = GaugeMetricFamily(
            "studio_worker_last_heartbeat_timestamp_seconds",
            "Unix time of each worker process's last heartbeat", labels=["worker"])
        threads = GaugeMetricFamily("studio_worker_threads",
                                    "Consumer threads alive in each live worker process",
                                    labels=["worker"])
        for record in [*live, *stale]:
            last.add_metric([record.worker], record.last_seen)
        for record in live:
            threads.add_metric([record.worker], record.threads)
        yield last
        yield threads

    def _circuits(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "studio_engine_circuit_open",
            "1 while an engine's circuit breaker is open (calls are not tried)",
            labels=["capability", "engine"])
        for capability, rows in self.source.inventory().items():
            for row in rows:
                family.add_metric([capability, row["name"]], 1 if circuit_open(row) else 0)
        yield family

    def _disk(self) -> Iterator[GaugeMetricFamily]:
        usage = shutil.disk_usage(self.source.data_dir)
        free = GaugeMetricFamily("studio_data_dir_free_bytes",
                                 "Free bytes on the data dir's filesystem")
        free.add_metric([], usage.free)
        total = GaugeMetricFamily("studio_data_dir_total_bytes",
                                  "Size in bytes of the data dir's filesystem")
        total.add_metric([], usage.total)
        yield free
        yield total


def circuit_open(row: Mapping[str, Any]) -> bool:
    """The hook for circuit breakers: an inventory row with ``circuit`` ("open", "half_open",
    "closed") or ``circuit_open`` (bool). Only "open" counts; rows without either are closed."""
    if "circuit_open" in row:
        return bool(row["circuit_open"])
    return str(row.get("circuit", "closed")).lower() in CIRCUIT_OPEN_STATES
