"""Prometheus metrics: one registry per app, so tests and several apps in a process agree."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
