"""Run from a separate process by ``test_sessions.py``: sessions that end and files that
belong to their owner, probed against a running studio with ``gradio_client`` and httpx, as
an outsider would.

    python session_client.py PLAN.json OUT.json

PLAN names the studio's URL and which probe to run (``owners``, ``token_expiry``,
``password_expiry``) with its credentials; OUT records what each step saw (status codes,
values, error texts). Nothing is asserted here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from gradio_client import Client

from tests.security.gradio_door_client import outcome


def login(url: str, user: str, password: str) -> Client:
    # download_files=False: answers name the server's files (as a browser sees them)
    return Client(url, auth=(user, password), verbose=False, download_files=False)


def get(url: str, client: Client | None, path: str) -> int:
    """The status of fetching a server file through the Gradio door."""
    cookies = dict(client.cookies) if client is not None else {}
    return httpx.get(f"{url}gradio_api/file={path}", cookies=cookies, timeout=30).status_code


def path_of(value: Any) -> str:
    first = value[0] if isinstance(value, (list, tuple)) else value
    return str(first["path"] if isinstance(first, dict) else first)


def raw_call(url: str, client: Client, api: str, **given: Any) -> str:
    """A Gradio API call made by hand (``gradio_client`` would upload a local path it is
    given rather than name the server's file): the event stream's text. Parameters not
    ``given`` take their documented defaults."""
    cookies = dict(client.cookies)
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"][api]
    data = [given.get(p["parameter_name"], p.get("parameter_default"))
            for p in info["parameters"]]
    started = httpx.post(f"{url}gradio_api/call{api}", json={"data": data}, cookies=cookies,
                         timeout=30)
    if started.status_code != 200:
        return f"HTTP {started.status_code}: {started.text}"
    event = started.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call{api}/{event}", cookies=cookies, timeout=300).text


def upload(url: str, client: Client, name: str, data: bytes) -> str:
    response = httpx.post(f"{url}gradio_api/upload", cookies=dict(client.cookies),
                          files=[("files", (name, data, "audio/wav"))], timeout=60)
    response.raise_for_status()
    return str(response.json()[0])


def probe_owners(plan: dict[str, Any]) -> dict[str, Any]:
    url = plan["url"]
    out: dict[str, Any] = {}
    alice = login(url, "alice", plan["alice"])
    bob = login(url, "bob", plan["bob"])
    root = login(url, "root", plan["root"])
    said = outcome(lambda: alice.predict(text="ありがとう。", api_name="/synthesize"))
    out["alice_synthesizes"] = said
    if not said["ok"]:
        return out
    mine = path_of(said["value"])
    theirs = outcome(lambda: bob.predict(text="さようなら。", api_name="/synthesize"))
    out["bob_synthesizes"] = theirs
    bobs = path_of(theirs["value"]) if theirs["ok"] else mine
    out["alice_path"], out["bob_path"] = mine, bobs
    # the same file through every door and every spelling of its path
    guessed = f"{Path(bobs).parent}/../{Path(mine).parent.name}/{Path(mine).name}"
    out["fetch"] = {
        "alice_own": get(url, alice, mine),
        "bob_alices": get(url, bob, mine),
        "bob_own": get(url, bob, bobs),
        "bob_guessed_from_own": get(url, bob, guessed),
        "bob_doubled_slash": get(url, bob, mine.replace("/", "//", 1)),
        "bob_old_route": httpx.get(f"{url}gradio_api/file/{mine.lstrip('/')}",
                                   cookies=dict(bob.cookies), timeout=30).status_code,
        "admin_alices": get(url, root, mine),
        "anonymous_alices": get(url, None, mine),
    }
    # bob names alice's file as an input to his own call
    out["bob_uses_alices_file"] = raw_call(url, bob, "/adjust_prosody", audio_path={
        "path": mine, "meta": {"_type": "gradio.FileData"}}, message="ありがとう。")
    # uploads are their uploader's
    uploaded = upload(url, bob, "take.wav", Path(plan["speech"]).read_bytes())
    out["upload"] = {"bob_own": get(url, bob, uploaded), "alice_bobs": get(url, alice, uploaded),
                     "admin_bobs": get(url, root, uploaded)}
    out["alice_uses_bobs_upload"] = raw_call(url, alice, "/adjust_prosody", audio_path={
        "path": uploaded, "meta": {"_type": "gradio.FileData"}}, message="ありがとう。")
    out["bob_uses_own_upload"] = raw_call(url, bob, "/adjust_prosody", audio_path={
        "path": uploaded, "meta": {"_type": "gradio.FileData"}}, message="ありがとう。")
    # logout: the session (and so its files and calls) is gone
    cookies = dict(bob.cookies)
    out["logout"] = httpx.get(f"{url}logout", cookies=cookies, timeout=30).status_code
    out["after_logout"] = {
        "login_check": httpx.get(f"{url}gradio_api/login_check", cookies=cookies,
                                 timeout=30).status_code,
        "own_file": get(url, bob, bobs),
        "call": outcome(lambda: bob.predict(api_name="/list_tracks")),
    }
    return out


def probe_expiry(plan: dict[str, Any]) -> dict[str, Any]:
    """Log in, work, wait until the session's end (given by the plan: the token's ``exp``,
    or login time + the configured lifetime), then work again."""
    url = plan["url"]
    out: dict[str, Any] = {}
    client = login(url, plan["user"], plan["password"])
    logged_in = time.time()  # the server's session began before this
    cookies = dict(client.cookies)
    out["before"] = outcome(lambda: client.predict(api_name="/list_tracks"))
    out["before_check"] = httpx.get(f"{url}gradio_api/login_check", cookies=cookies,
                                    timeout=30).status_code
    ends = plan["ends_at"] if plan.get("ends_at") else logged_in + plan["lifetime_s"]
    time.sleep(max(0.0, ends - time.time()) + 1.5)
    out["after"] = outcome(lambda: client.predict(api_name="/list_tracks"))
    out["after_check"] = httpx.get(f"{url}gradio_api/login_check", cookies=cookies,
                                   timeout=30).status_code
    out["login_again"] = outcome(lambda: login(url, plan["user"], plan["password"])
                                 .predict(api_name="/list_tracks"))
    return out


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    probe = {"owners": probe_owners, "expiry": probe_expiry}[plan["probe"]]
    Path(sys.argv[2]).write_text(json.dumps(probe(plan), default=str))


if __name__ == "__main__":
    main()
