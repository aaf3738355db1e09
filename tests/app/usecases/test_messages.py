"""app/usecases/messages.py, called as the doors call it: with only the parts it needs (the store,
the jobs, the queue, a chain), no app around it."""

from __future__ import annotations

from app.services import Services
from app.usecases import messages


def test_messages_found_by_short_id_for_their_owner_only(services: Services) -> None:
    job = services.jobs.create(messages.KIND, {"text": "hi"}, ["image"], owner="alice")
    assert messages.resolve_id(services.jobs, job.id[:12], "alice") == job.id
    assert messages.resolve_id(services.jobs, job.id[:12], "bob") == job.id[:12]
    assert [j.id for j in messages.history(services.jobs, limit=0, owner="alice")] == [job.id]
    assert messages.message_view(services.storage, job)["text"] == "hi"
