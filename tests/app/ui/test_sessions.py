"""The pieces behind sessions that end and files that belong to their maker
(``app.ui.sessions``), with a clock the test moves; the whole, served and driven from
another process, is ``tests/security/test_sessions.py``."""

from __future__ import annotations

from app.ui.sessions import FileOwners, SessionTokens, file_paths, foreign_inputs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_end_at_their_deadline() -> None:
    clock = Clock()
    tokens = SessionTokens(lifetime_s=600, clock=clock)
    tokens.expect("alice", clock.now + 60)  # a token that expires in a minute
    tokens["t-alice"] = "alice"
    tokens["t-carla"] = "carla"  # a password login: the lifetime
    tokens.expect("bob", clock.now + 86400)  # a day-long token: capped by the lifetime
    tokens["t-bob"] = "bob"
    assert tokens.get("t-alice") == "alice" and "t-alice" in tokens
    clock.now += 61
    assert tokens.get("t-alice") is None and "t-alice" not in tokens
    assert sorted(tokens) == ["t-bob", "t-carla"] and len(tokens) == 2
    clock.now += 540
    assert tokens.get("t-bob") is None and tokens.get("t-carla") is None
    assert len(tokens) == 0 and tokens.get(None) is None


def test_an_announced_deadline_is_for_that_user_only() -> None:
    clock = Clock()
    tokens = SessionTokens(lifetime_s=600, clock=clock)
    tokens.expect("alice", clock.now + 5)
    tokens["t-bob"] = "bob"  # not alice: the announcement is dropped, bob gets the lifetime
    tokens["t-alice"] = "alice"  # nothing announced any more: the lifetime
    clock.now += 10
    assert tokens.get("t-bob") == "bob" and tokens.get("t-alice") == "alice"


def test_logout_as_gradio_does_it() -> None:
    tokens = SessionTokens(lifetime_s=600)
    tokens["a1"], tokens["a2"], tokens["b1"] = "alice", "alice", "bob"
    for token in list(tokens.keys()):  # gradio.routes logout(all_session=True)
        if tokens[token] == "alice":
            del tokens[token]
    assert dict(tokens) == {"b1": "bob"}


def test_file_owners() -> None:
    owners = FileOwners(max_files=3)
    owners.add("/tmp/gradio/aa/audio.wav", "alice")
    owners.add("/tmp/gradio/pp/page.png", None)  # the page's: everyone's
    assert owners.may_read("/tmp/gradio/aa/audio.wav", "alice")
    assert not owners.may_read("/tmp/gradio/aa/audio.wav", "bob")
    assert not owners.may_read("/tmp/gradio/bb/../aa/audio.wav", "bob")
    assert owners.may_read("/tmp/gradio/bb/../aa/audio.wav", "alice")
    assert owners.may_read("/tmp/gradio/pp/page.png", "bob")
    assert not owners.may_read("/tmp/gradio/zz/never.wav", "alice")  # unknown: nobody's
    owners.add("/tmp/gradio/bb/b.wav", "bob")
    owners.add("/tmp/gradio/cc/c.wav", "bob")  # over the bound: the oldest is forgotten
    assert not owners.may_read("/tmp/gradio/aa/audio.wav", "alice")


def test_file_paths_in_component_values() -> None:
    meta = {"_type": "gradio.FileData"}
    value = [{"path": "/a.wav", "meta": meta}, "text",
             {"__type__": "update", "value": [[{"image": {"path": "/b.png", "meta": meta}}]]},
             {"path": "not a file: no meta"}, {"path": "https://x/y.png", "meta": meta}]
    assert list(file_paths(value)) == ["/a.wav", "/b.png"]
    owners = FileOwners()
    owners.add("/a.wav", "bob")
    assert foreign_inputs(owners, "bob", value) == ["/b.png"]
    assert foreign_inputs(owners, None, value) == []
