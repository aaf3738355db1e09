"""Entry point for separate workers: ``huey_consumer app.worker.huey -k thread -w 2``.

It builds the same services as the app from the same ``STUDIO_*`` settings, so a job
enqueued by the app runs here and its status and artifacts are visible to the app (share
``STUDIO_QUEUE_URL`` and, across machines, ``STUDIO_STORAGE=s3``).
"""

from __future__ import annotations

import sys

from app.config import SettingsError, load_settings
from app.logs import setup_logging
from app.services import build_services

try:
    settings = load_settings()
except SettingsError as exc:
    sys.stderr.write(f"{exc}\n")
    raise SystemExit(2) from None

setup_logging(settings.log_level, settings.log_format)
services = build_services(settings)
services.queue.recover()
huey = services.queue.huey
