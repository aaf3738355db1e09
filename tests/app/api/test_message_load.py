"""Load on loopback, bounded: a burst of concurrent message submissions larger
than the queue. Every answer is 202, or 503 ``QUEUE_FULL`` / 429 ``RATE_LIMITED`` with a
``retry_after``; every accepted job completes exactly once (each stage started once, one
video each); the app's memory stays bounded; once the burst drains, the queue takes work
again. ``bench/load.py`` runs the same with bigger N and prints a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services import build_services
from tests.app.api.load import RssSampler, burst, post_message, stage_attempts, wait_all
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

N = 10
MAX_QUEUED = 2
RATE_LIMIT = 9  # per minute and client: the burst's tail meets the rate limit too
RSS_GROWTH_MB = 1500  # generous: ten jobs through two workers add far less than this


@pytest.fixture
def small_queue(settings, tmp_path: Path):
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 2,
        "max_queued": MAX_QUEUED, "rate_limit_per_minute": RATE_LIMIT}))
    services.queue.start_consumer(2, install_signals=False)
    with LiveServer(services) as server:
        yield server, services
    services.close()


def test_burst_larger_than_the_queue(small_queue) -> None:
    server, services = small_queue
    with RssSampler() as rss:
        # one message first, so the engines are loaded before memory is judged
        warm = post_message(server.url)
        assert warm.status == 202, warm.body
        wait_all(services, [warm.task_id], timeout=300)
        settled_mb = rss.samples[-1] / 2**20

        answers = burst(server.url, N)
        accepted = [a.task_id for a in answers if a.status == 202]
        refused = [a for a in answers if a.status != 202]
        for answer in refused:
            assert answer.status in (503, 429), (answer.status, answer.body)
            assert answer.code == ("QUEUE_FULL" if answer.status == 503 else "RATE_LIMITED")
            error = answer.body["error"]
            assert error["retry_after"] > 0
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.body["success"] is False
        assert 1 <= len(accepted) < N  # the queue took some and refused the rest
        # at most the queue's room, plus a job per worker that started during the burst
        assert len(accepted) <= MAX_QUEUED + 2, [a.status for a in answers]
        assert any(a.status == 503 for a in refused)
        assert len(set(accepted)) == len(accepted)

        jobs = wait_all(services, accepted, timeout=400)
    assert {j.status for j in jobs.values()} == {"completed"}
    for job_id in accepted:
        assert set(stage_attempts(services, job_id).values()) == {1}, job_id
    videos = [j.result["video_key"] for j in jobs.values()]
    assert len(set(videos)) == len(videos)
    assert all(services.storage.exists(k) for k in videos)
    # no job the app did not accept exists; none of the accepted is missing
    ids = {j.id for j in services.jobs.list(kind="message.generate", limit=1000)}
    assert ids == {warm.task_id, *accepted}
    assert services.queue.depth() == 0
    # drained: the queue admits work again (straight to the queue: the REST rate limit
    # for this client is spent for the minute)
    after = services.queue.submit("diagnostics.tone", {"seconds": 0.1})
    assert wait_all(services, [after.id], timeout=60)[after.id].status == "completed"
    assert rss.peak_mb - settled_mb < RSS_GROWTH_MB, (settled_mb, rss.peak_mb)
