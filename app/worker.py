"""Entry point for separate workers: ``huey_consumer app.worker.huey -k thread -w 2 -m 1``.

It builds the same services as the app from the same ``STUDIO_*`` settings, so a job
enqueued by the app runs here and its status and artifacts are visible to the app (share
``STUDIO_QUEUE_URL`` and, across machines, ``STUDIO_STORAGE=s3``). ``-m 1`` caps huey's idle
back-off at one second; without it an idle worker sleeps up to 10 s before the next stage.

The worker says it is alive through heartbeat records beside the queue
(``app.runner.heartbeat``, started by huey's worker start-up hook), holds a lease on each
stage it runs, and takes back the stages of workers that died (``app.runner.leases``,
``app.runner.reaper``). With
``STUDIO_METRICS_PORT`` set it also serves this process's own Prometheus metrics (stage
durations, finished jobs) on ``STUDIO_HOST:STUDIO_METRICS_PORT/metrics``; use thread workers
(``-k thread``) so those numbers are all in this one process.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from app.config import SettingsError, load_settings
from app.logs import setup_logging
from app.metrics import Metrics
from app.services import build_services
from app.storage import LocalStorage

try:
    settings = load_settings()
except SettingsError as exc:
    sys.stderr.write(f"{exc}\n")
    raise SystemExit(2) from None

_metrics_port = os.environ.get("STUDIO_METRICS_PORT", "").strip()
if _metrics_port and not (_metrics_port.isdigit() and 1 <= int(_metrics_port) <= 65535):
    sys.stderr.write(f"invalid setting: STUDIO_METRICS_PORT: {_metrics_port!r} is not a port\n")
    raise SystemExit(2)

setup_logging(settings.log_level, settings.log_format)
services = build_services(settings)
if isinstance(services.storage, LocalStorage):
    services.storage.sweep_temp()
services.queue.recover()
huey = services.queue.huey
metrics = Metrics()
metrics.bind(services, state=False)  # the app reports the shared state; we report our work
if _metrics_port:
    from prometheus_client import start_http_server

    start_http_server(int(_metrics_port), addr=settings.host, registry=metrics.registry)

_create_consumer = huey.create_consumer


def _consumer_with_our_logging(**options: Any) -> Any:
    """``huey_consumer`` gives the "huey" logger a handler of its own after importing this
    module, so each huey line came out twice (its text, our JSON). Drop it: the root handler
    (``app.logs``) prints every line once, with the job id and stage of the task."""
    logging.getLogger("huey").handlers.clear()
    return _create_consumer(**options)


huey.create_consumer = _consumer_with_our_logging
