"""Scheduled clean-up of old artifacts, and the free-disk guard for new jobs.

Ages by key prefix (defaults from the original design): temporary files 1 h, uploads
7 days, processed intermediates 3 days, final videos 30 days. Voice profiles and the BGM
catalogue are never aged out. A file that any unfinished job refers to is never deleted.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from datetime import timezone
from pathlib import Path
from typing import Any

from app.runner.jobs import Jobs
from app.storage import Storage
from models.errors import StudioError

log = logging.getLogger("studio.retention")


class DiskFull(StudioError):
    kind = "insufficient_storage"
    default_code = "STORAGE_DISK_FULL"


def retention_rules(settings: Any) -> dict[str, float]:
    """Prefix -> maximum age in seconds."""
    hour, day = 3600.0, 86400.0
    return {
        "temp/": settings.retention_temp_hours * hour,
        "inputs/": settings.retention_uploads_days * day,
        "processed/": settings.retention_processed_days * day,
        "prosody/": settings.retention_processed_days * day,
        "bgm/mixes/": settings.retention_processed_days * day,
        "videos/": settings.retention_videos_days * day,
        "voices/": settings.retention_processed_days * day,  # synthesized speech
    }


# Never aged out, whatever prefix rule covers them: voice profiles and uploaded music.
KEEP_PREFIXES: tuple[str, ...] = ("voices/openvoice/", "bgm/tracks/")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def keys_in_use(jobs: Jobs) -> set[str]:
    """Every storage key mentioned by a job that has not finished (inputs, stage outputs)."""
    used: set[str] = set()
    for job in jobs.list(limit=100_000):
        if job.final:
            continue
        used.update(_strings(job.params))
        used.update(_strings(job.result or {}))
        used.update(_strings(jobs.store.load_stages(job.id)))
    return used


def cleanup(storage: Storage, jobs: Jobs, rules: dict[str, float],
            now: float | None = None) -> dict[str, int]:
    now = time.time() if now is None else now
    protected = keys_in_use(jobs)
    deleted = kept_in_use = 0
    for prefix, max_age in rules.items():
        for obj in list(storage.list(prefix)):
            age = now - obj.modified.replace(tzinfo=obj.modified.tzinfo or timezone.utc
                                             ).timestamp()
            if age <= max_age or obj.key.startswith(KEEP_PREFIXES):
                continue
            if obj.key in protected:
                kept_in_use += 1
                continue
            storage.delete(obj.key)
            deleted += 1
    if deleted or kept_in_use:
        log.info("retention clean-up", extra={"deleted": deleted, "kept_in_use": kept_in_use})
    return {"deleted": deleted, "kept_in_use": kept_in_use}


def check_free_space(path: Path, min_free_mb: float) -> None:
    """Refuse new work before the disk fills up, rather than fail half-way through it."""
    if min_free_mb <= 0:
        return
    path.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(path).free / 2**20
    if free_mb < min_free_mb:
        raise DiskFull(
            f"Not enough free disk space for new work ({free_mb:.0f} MB free, "
            f"{min_free_mb:.0f} MB needed).",
            message_ja=f"ディスクの空き容量が不足しています（空き {free_mb:.0f} MB、必要 {min_free_mb:.0f} MB）。",
            details={"free_mb": round(free_mb, 1), "min_free_mb": min_free_mb},
            retry_after=300,
        )
