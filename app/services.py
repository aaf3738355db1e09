"""Everything the routers, the UI and the workers share, built once from Settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from huey import crontab

from app.config import VERSION, Settings
from app.jobs import Jobs, create_job_store
from app.queue import TaskQueue, create_huey
from app.retention import check_free_space, cleanup, retention_rules
from app.storage import Storage, create_storage
from models.base import EngineSettings, FallbackChain
from models.registry import CAPABILITIES, build_chain


@dataclass
class Services:
    settings: Settings
    storage: Storage
    jobs: Jobs
    queue: TaskQueue
    engine_settings: EngineSettings
    _chains: dict[str, FallbackChain] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    extras: dict[str, Any] = field(default_factory=dict)

    def chain(self, capability: str) -> FallbackChain:
        """The capability's engines in the configured order (built once, models load lazily)."""
        with self._lock:
            if capability not in self._chains:
                self._chains[capability] = build_chain(
                    capability, self.settings.backends(capability), self.engine_settings)
            return self._chains[capability]

    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        return {cap: self.chain(cap).inventory() for cap in CAPABILITIES}

    @property
    def version(self) -> str:
        return VERSION

    def close(self) -> None:
        self.queue.stop_consumer()
        for chain in self._chains.values():
            chain.close()


def build_services(settings: Settings, *, immediate: bool = False) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = create_storage(settings)
    jobs = Jobs(create_job_store(settings.resolved_queue_url, settings.data_dir))
    engine_settings = settings.engine_settings()
    holder: dict[str, Services] = {}
    queue = TaskQueue(
        create_huey(settings.resolved_queue_url, immediate=immediate), jobs, storage,
        engine_settings, lambda cap: holder["s"].chain(cap), max_queued=settings.max_queued,
        admission=lambda: check_free_space(settings.data_dir, settings.min_free_mb),
        lease_seconds=settings.lease_seconds,
    )
    services = Services(settings, storage, jobs, queue, engine_settings)
    holder["s"] = services
    rules = retention_rules(settings)
    queue.huey.periodic_task(crontab(minute="*/15"), name="studio.retention")(
        lambda: cleanup(storage, jobs, rules))
    return services
