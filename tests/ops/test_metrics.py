"""/metrics carries what the alerts and the dashboard need, recorded by the real queue path:
stage durations, synthesis and render latency, fallbacks, finished jobs, live workers, engine
circuits and free disk."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from app.config import VERSION
from app.main import create_app
from app.metrics import Metrics, circuit_open
from app.runner.heartbeat import live_workers
from app.services import Services
from tests.conftest import wait_for_job
from tests.ops.helpers import install_ops_jobs, samples, value


@pytest.fixture
def studio(services: Services) -> Iterator[TestClient]:
    yield from _studio(services)


def _studio(services: Services) -> Iterator[TestClient]:
    gen = install_ops_jobs(services)
    next(gen)
    with TestClient(create_app(services, with_ui=False)) as client:
        services.queue.start_consumer(1, install_signals=False)
        deadline = time.monotonic() + 30
        while not live_workers(services.queue.huey)[0]:  # its thread says hello on start
            assert time.monotonic() < deadline
            time.sleep(0.05)
        try:
            yield client
        finally:
            services.queue.stop_consumer()
    gen.close()


def scrape(client: TestClient) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def test_a_job_records_stages_latency_fallback_and_outcome(studio, services) -> None:
    done = wait_for_job(services, services.queue.submit("ops.message", {}).id, timeout=60)
    assert done["status"] == "completed" and done["result"]["made_by"] == "made by piper"
    failed = wait_for_job(services, services.queue.submit("ops.broken", {}).id, timeout=60)
    assert failed["status"] == "failed"
    m = scrape(studio)
    # stages the handler timed, with the engine that did them
    assert value(m, "studio_stage_duration_seconds_count", stage="synthesize",
                 backend="piper") == 1
    assert value(m, "studio_synthesis_duration_seconds_count", backend="piper") == 1
    assert value(m, "studio_render_duration_seconds_count", backend="builtin") == 1
    # a stage it did not time is timed by the queue, engine unknown, and no latency series
    assert value(m, "studio_stage_duration_seconds_count", stage="store",
                 backend="unknown") == 1
    assert value(m, "studio_render_duration_seconds_count", backend="unknown") is None
    # kokoro was down: piper made it, one fallback
    assert value(m, "studio_fallbacks_total", capability="tts", engine="piper") == 1
    assert value(m, "studio_jobs_finished_total", kind="ops.message", status="completed") == 1
    assert value(m, "studio_jobs_finished_total", kind="ops.broken", status="failed") == 1
    assert value(m, "studio_job_duration_seconds_count", kind="ops.message") == 1
    assert value(m, "studio_jobs", status="failed") == 1
    assert value(m, "studio_build_info", version=VERSION) == 1


def test_live_worker_reported_and_gone_after_clean_stop(studio, services) -> None:
    m = scrape(studio)
    assert value(m, "studio_workers_live") == 1
    worker = services.queue.worker_name
    assert value(m, "studio_worker_threads", worker=worker) == 1
    beat = value(m, "studio_worker_last_heartbeat_timestamp_seconds", worker=worker)
    assert beat is not None and abs(time.time() - beat) < 60
    services.queue.stop_consumer()
    m = scrape(studio)
    assert value(m, "studio_workers_live") == 0
    assert value(m, "studio_worker_threads", worker=worker) is None


def test_state_gauges_circuits_and_disk(client, services) -> None:
    m = scrape(client)
    rows = [(cap, row["name"]) for cap, engines in services.inventory().items()
            for row in engines]
    assert rows
    for capability, engine in rows:
        assert value(m, "studio_engine_circuit_open", capability=capability,
                     engine=engine) == 0
    free = value(m, "studio_data_dir_free_bytes")
    total = value(m, "studio_data_dir_total_bytes")
    assert free is not None and total is not None and 0 < free <= total
    assert value(m, "studio_workers_live") == 0  # STUDIO_WORKERS=0 and no consumer


def test_circuit_hook_reads_inventory_rows() -> None:
    assert circuit_open({"name": "voicevox", "circuit": "open"})
    assert circuit_open({"name": "voicevox", "circuit_open": True})
    assert not circuit_open({"name": "voicevox", "circuit": "half_open"})
    assert not circuit_open({"name": "voicevox", "circuit": "closed"})
    assert not circuit_open({"name": "voicevox", "available": False})


def test_observe_chain_counts_only_fallbacks() -> None:
    metrics = Metrics()
    metrics.observe_chain("tts", {"backend": "kokoro", "fallback_used": False})
    metrics.observe_chain("tts", {"backend": "openjtalk", "fallback_used": True})
    m = samples(generate_latest(metrics.registry).decode())
    assert value(m, "studio_fallbacks_total", capability="tts", engine="openjtalk") == 1
    assert value(m, "studio_fallbacks_total", capability="tts", engine="kokoro") is None


def test_metrics_count_what_the_runner_tells_and_read_gauges_from_a_small_source(
        tmp_path) -> None:
    """Metrics need no services: events to subscribe to, and workers, engine rows and a
    data dir to read (``app.metrics.Observed``). Unbound, they hear nothing more."""
    from app.runner.events import ChainRan, Events, JobFinished, StageDone, StepDone
    from app.runner.heartbeat import WorkerRecord
    from models.chain import Attempt, ChainResult

    class Source:
        events = Events()
        data_dir = tmp_path

        def workers(self) -> tuple[list[WorkerRecord], list[WorkerRecord]]:
            now = time.time()
            return [WorkerRecord("h:1", "h", 1, 2, now - 5, now)], []

        def inventory(self) -> dict[str, list[dict[str, object]]]:
            return {"tts": [{"name": "voicevox", "circuit": "open"}]}

    source = Source()
    metrics = Metrics()
    metrics.bind(source)
    fallback = ChainResult("x", "piper", (Attempt("kokoro", "failed"), Attempt("piper", "used")))
    for event in (StageDone("render", "builtin", 2.0), StepDone("store", 0.1),
                  ChainRan("tts", fallback), JobFinished("ops.message", "completed", 3.0)):
        source.events.send(event)
    m = samples(generate_latest(metrics.registry).decode())
    assert value(m, "studio_render_duration_seconds_count", backend="builtin") == 1
    assert value(m, "studio_stage_duration_seconds_count", stage="store", backend="unknown") == 1
    assert value(m, "studio_fallbacks_total", capability="tts", engine="piper") == 1
    assert value(m, "studio_jobs_finished_total", kind="ops.message", status="completed") == 1
    assert value(m, "studio_workers_live") == 1
    assert value(m, "studio_worker_threads", worker="h:1") == 2
    assert value(m, "studio_engine_circuit_open", capability="tts", engine="voicevox") == 1
    assert value(m, "studio_data_dir_free_bytes") > 0
    metrics.unbind()
    source.events.send(JobFinished("ops.message", "completed", 3.0))
    m = samples(generate_latest(metrics.registry).decode())
    assert value(m, "studio_jobs_finished_total", kind="ops.message", status="completed") == 1
