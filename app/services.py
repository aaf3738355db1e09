"""Everything the routers, the UI and the workers share, built once from Settings.

This is where the job runner's parts (``app.runner``) are built and wired together: the
queue holds them; metrics (``app.metrics``) subscribe to its events and read the shared
state through :class:`Services` (its ``workers``, ``inventory`` and ``data_dir``)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from huey import crontab

from app.api.limits import RateLimiter
from app.config import VERSION, Settings
from app.retention import check_free_space, cleanup, retention_rules
from app.runner import heartbeat
from app.runner.events import Events
from app.runner.heartbeat import WorkerRecord
from app.runner.jobs import Jobs
from app.runner.leases import LeaseKeeper
from app.runner.queue import TaskQueue, create_huey
from app.runner.reaper import Reaper
from app.runner.running import WorkerParts
from app.runner.stages import StageScheduler
from app.runner.stores import create_job_store
from app.runner.unstaged import UnstagedRunner
from app.storage import Storage, create_storage
from models.base import EngineSettings
from models.blas_threads import limit_blas_threads
from models.chain import FallbackChain
from models.registry import CAPABILITIES, build_chain
from pipelines.jobs import job_kinds

if TYPE_CHECKING:
    from pathlib import Path

    import gradio as gr
    from huey.api import Huey

    from app.fetch import SafeFetcher
    from pipelines.voice.kit import VoiceKit

AdminCheck = Callable[["gr.Request | None"], bool]


@dataclass
class UiSessions:
    """What the UI's login learns about its users, in this process (a restart forgets it:
    users sign in again)."""

    token_admins: set[str] = field(default_factory=set)  # signed in with an admin token
    password_users: frozenset[str] = frozenset()  # the names STUDIO_AUTH_USERS lists
    recent: dict[str, deque[str]] = field(default_factory=dict)  # outputs each user made
    # Decides who may use the Jobs tab once a login exists; None (no login) lets everyone.
    is_admin: AdminCheck | None = None


@dataclass
class Services:
    settings: Settings
    storage: Storage
    jobs: Jobs
    queue: TaskQueue
    engine_settings: EngineSettings
    ui: UiSessions = field(default_factory=UiSessions)
    voice_kit: VoiceKit | None = None  # built on first use by app.usecases.voices
    fetcher: SafeFetcher | None = None  # a test's stand-in; else app.api.video builds one
    # one limiter for both doors: REST's expensive routes and the Gradio API's
    rate_limiter: RateLimiter = field(init=False)
    _chains: dict[str, FallbackChain[Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(self.settings.rate_limit_per_minute)

    def chain(self, capability: str) -> FallbackChain[Any]:
        """The capability's engines in the configured order (built once, models load lazily)."""
        with self._lock:
            if capability not in self._chains:
                self._chains[capability] = build_chain(
                    capability, self.settings.backends(capability), self.engine_settings)
            return self._chains[capability]

    def inventory(self) -> dict[str, list[dict[str, Any]]]:
        return {cap: self.chain(cap).inventory() for cap in CAPABILITIES}

    @property
    def events(self) -> Events:
        """The job runner's events (``app.metrics`` subscribes)."""
        return self.queue.events

    def workers(self) -> tuple[list[WorkerRecord], list[WorkerRecord]]:
        """(live, stale) worker processes of the queue, from their heartbeats."""
        return heartbeat.live_workers(self.queue.huey)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def version(self) -> str:
        return VERSION

    def close(self) -> None:
        self.queue.stop_consumer()
        for chain in self._chains.values():
            chain.close()


def build_services(settings: Settings, *, immediate: bool = False) -> Services:
    limit_blas_threads()  # the process's numpy work is small; idle BLAS threads spin
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    storage = create_storage(settings)
    jobs = Jobs(create_job_store(settings.resolved_queue_url, settings.data_dir))
    engine_settings = settings.engine_settings()
    holder: dict[str, Services] = {}
    queue = build_queue(settings, create_huey(settings.resolved_queue_url, immediate=immediate),
                        jobs, storage, engine_settings, lambda cap: holder["s"].chain(cap))
    services = Services(settings, storage, jobs, queue, engine_settings)
    holder["s"] = services
    rules = retention_rules(settings)
    queue.huey.periodic_task(crontab(minute="*/15"), name="studio.retention")(
        lambda: cleanup(storage, jobs, rules))
    return services


def build_queue(settings: Settings, huey: Huey, jobs: Jobs, storage: Storage,
                engine_settings: EngineSettings,
                chains: Callable[[str], FallbackChain[Any]]) -> TaskQueue:
    """The job runner, wired: a lease keeper that the heartbeat reports from, the parts that
    run unstaged and staged jobs, the reaper that takes back dead workers' work through
    them, and the queue that holds them all; every part tells the one :class:`Events`."""
    kinds = job_kinds()
    events = Events()
    worker = heartbeat.worker_id()
    leases = LeaseKeeper(jobs, settings.lease_seconds,
                         on_change=lambda: beat.beat_if_consuming())
    beat = heartbeat.install(huey, running=leases.held)  # beats while this process consumes
    parts = WorkerParts(huey, jobs, storage, engine_settings, chains, kinds, leases, events,
                        worker)
    unstaged = UnstagedRunner(parts)
    scheduler = StageScheduler(parts)
    queue: TaskQueue | None = None
    reaper = Reaper(huey, jobs, leases=leases, heartbeat=beat, scheduler=scheduler,
                    unstaged=unstaged, consuming=lambda: queue is not None and queue.consuming)
    queue = TaskQueue(huey, jobs, kinds=kinds, events=events, heartbeat=beat, unstaged=unstaged,
                      scheduler=scheduler, reaper=reaper, max_queued=settings.max_queued,
                      admission=lambda: check_free_space(settings.data_dir,
                                                         settings.min_free_mb))
    return queue
