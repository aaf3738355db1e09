"""``/health`` (public, no secrets) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.envelope import ok
from app.metrics import Metrics
from app.runner.heartbeat import live_workers
from app.services import Services


def worker_report(services: Services) -> dict[str, Any]:
    """The worker processes alive now, from their heartbeats beside the queue: in this
    process or in ``huey_consumer`` processes on any host, whatever ``STUDIO_WORKERS`` says."""
    try:
        live, stale = live_workers(services.queue.huey)
    except Exception as exc:  # the queue's own health says why
        return {"in_process_threads": services.settings.workers, "live": 0,
                "error": f"heartbeats unreadable: {exc}"}
    return {
        "in_process_threads": services.settings.workers,
        "live": len(live),
        "processes": [{"worker": r.worker, "host": r.host, "pid": r.pid, "threads": r.threads,
                       "version": r.version, "last_seen": round(r.last_seen, 1),
                       "running": r.extra.get("running", [])} for r in live],
        "stale": len(stale),
    }


def model_states(services: Services) -> dict[str, dict[str, object]]:
    """Each neural engine's weights: ready, missing, downloading (with progress) or
    "download failed: ..., next try in N min" (the model manager's words)."""
    from app.usecases import models

    return models.states(services.settings.engine_settings())


def create_router(services: Services, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["health"])
    metrics.bind(services)  # job/stage events of this process + shared state at scrape time

    @router.get("/health")
    def health() -> JSONResponse:
        storage_ok, storage_info = services.storage.health()
        queue_ok, queue_info = services.queue.health()
        engines = services.inventory()
        data = {
            "status": "ok" if storage_ok and queue_ok else "degraded",
            "version": services.version,
            "storage": {"ok": storage_ok, "backend": services.storage.name,
                        "info": storage_info},
            "queue": {"ok": queue_ok, "info": queue_info, "depth": services.queue.depth(),
                      "workers": worker_report(services)},
            "engines": engines,
            "models": model_states(services),
        }
        return ok(data, status_code=200 if storage_ok and queue_ok else 503)

    @router.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        for status, count in services.jobs.counts().items():
            metrics.jobs.labels(status).set(count)
        metrics.queue_depth.set(services.queue.depth())
        for capability, rows in services.inventory().items():
            for row in rows:
                metrics.engine_available.labels(capability, row["name"]).set(
                    1 if row["available"] else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
