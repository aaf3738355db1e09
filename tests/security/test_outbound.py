"""Outbound safety (SSRF): input URLs and D-ID result links go through the one set of rules
in ``models.net``. Loopback, private, link-local/metadata and IPv6 loopback addresses, names
that resolve to them, and redirects to any of them are refused with clear codes — and a
canary server on loopback proves that nothing was even contacted."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app.fetch import SafeFetcher
from app.storage import LocalStorage
from models.base import Audio, EngineSettings, RenderRequest, Speech
from models.errors import BackendFailed, InvalidInput
from models.net import OutboundRules, SafeHttp, UrlRefused
from models.talking_head.did import DidTalkingHead
from tests.stubs.did import DidBehaviour, DidStub

SSRF_HOSTS = ["127.0.0.1", "169.254.169.254", "10.0.0.1", "[::1]", "loopback.test"]


def resolver(host: str, port: int) -> list[str]:
    """DNS for the tests: ``loopback.test`` is a public-looking name for 127.0.0.1."""
    return {"loopback.test": ["127.0.0.1"], "media.example.com": ["93.184.216.34"],
            "mixed.example.com": ["93.184.216.34", "10.0.0.7"]}.get(host, [])


class Canary:
    """A TCP listener on loopback that counts connections (there must be none)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent, got {request.url}")


@pytest.mark.parametrize("host", SSRF_HOSTS)
def test_input_fetcher_refuses_internal_addresses(tmp_path: Path, host: str) -> None:
    """Even with the host on the allow-list, a non-public address is refused."""
    fetcher = SafeFetcher(LocalStorage(tmp_path), allowed_hosts=[host.strip("[]")],
                          resolver=resolver, transport=httpx.MockTransport(_never))
    with pytest.raises(InvalidInput) as info:
        fetcher.fetch(f"https://{host}/latest/meta-data/", max_bytes=1000)
    assert info.value.code == "VIDEO_INVALID_URL"
    assert info.value.details["reason"] == "private_address"


@pytest.mark.parametrize("url", [
    "http://media.example.com/a.png", "file:///etc/passwd", "gopher://media.example.com/",
    "https://user:pw@media.example.com/a.png", "https://mixed.example.com/a.png",
    "https://2130706433/a.png", "https://0x7f.0.0.1/a.png", "https://[::ffff:127.0.0.1]/a",
    "https://[fd00::1]/a", "https://100.64.0.1/a", "https://0.0.0.0/a",
    "https://media.example.com\x00.evil/a", "https://media.example.com:99999/a",
])
def test_input_fetcher_refuses_tricks(tmp_path: Path, url: str) -> None:
    fetcher = SafeFetcher(LocalStorage(tmp_path), allowed_hosts=[
        "media.example.com", "mixed.example.com", "2130706433", "0x7f.0.0.1",
        "::ffff:127.0.0.1", "fd00::1", "100.64.0.1", "0.0.0.0"],
        resolver=resolver, transport=httpx.MockTransport(_never))
    with pytest.raises(InvalidInput) as info:
        fetcher.fetch(url, max_bytes=1000)
    assert info.value.code == "VIDEO_INVALID_URL"


def test_redirects_from_a_trusted_origin_are_rechecked(canary: Canary) -> None:
    """A real redirecting server: each hop is checked; the internal target is never hit."""
    targets = [f"https://127.0.0.1:{canary.port}/x", f"http://127.0.0.1:{canary.port}/x",
               f"https://loopback.test:{canary.port}/x", "https://169.254.169.254/latest/",
               "https://10.0.0.1/x", f"https://[::1]:{canary.port}/x"]
    for target in targets:
        with DidStub(DidBehaviour(result_redirect=target)) as stub:
            http = SafeHttp(OutboundRules(any_public_host=True, trusted_origins=(stub.url,),
                                          timeout=5), resolver=resolver)
            with pytest.raises(UrlRefused) as info:
                http.stream(f"{stub.url}/results/t.mp4", max_bytes=10_000, area="FETCH")
            assert info.value.code == "FETCH_INVALID_URL"
            assert info.value.details["reason"] in ("private_address", "scheme"), target
            assert ("GET", "/results/t.mp4") in stub.behaviour.requests  # the first hop ran
    assert canary.hits == 0


def _render_request(tmp_path: Path) -> RenderRequest:
    return RenderRequest(Image.new("RGB", (64, 64), (200, 180, 160)),
                         Speech(Audio(np.full(16000, 0.1, np.float32), 16000)),
                         output=tmp_path / "out.mp4", options={})


def _did(stub: DidStub) -> DidTalkingHead:
    return DidTalkingHead(EngineSettings(did_url=stub.url, did_api_key="user:secret"),
                          sleep=lambda s: None, resolver=resolver, download_timeout=5)


@pytest.mark.parametrize("host", SSRF_HOSTS)
def test_did_result_link_to_internal_address_is_refused(tmp_path: Path, host: str,
                                                        canary: Canary) -> None:
    port = canary.port if host in ("127.0.0.1", "[::1]", "loopback.test") else 443
    behaviour = DidBehaviour(polls_before_done=0, result_url=f"https://{host}:{port}/r.mp4")
    with DidStub(behaviour) as stub:
        with pytest.raises(BackendFailed) as info:
            _did(stub).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_UNSAFE_URL"
    assert info.value.details["reason"] == "private_address"
    assert info.value.message_ja
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob(".*partial"))
    assert canary.hits == 0


@pytest.mark.parametrize(("url", "reason"), [
    ("http://results.example.com/r.mp4", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("https://user:pw@results.example.com/r.mp4", "credentials"),
    ("https://nowhere.invalid/r.mp4", "unresolvable"),
])
def test_did_result_link_breaking_other_rules(tmp_path: Path, url: str, reason: str) -> None:
    with DidStub(DidBehaviour(polls_before_done=0, result_url=url)) as stub:
        with pytest.raises(BackendFailed) as info:
            _did(stub).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_UNSAFE_URL"
    assert info.value.details["reason"] == reason


@pytest.mark.parametrize("target", ["https://169.254.169.254/latest/meta-data/",
                                    "https://10.0.0.1/r.mp4", "https://loopback.test/r.mp4",
                                    "https://[::1]/r.mp4"])
def test_did_result_redirect_to_internal_address_is_refused(tmp_path: Path,
                                                            target: str) -> None:
    behaviour = DidBehaviour(polls_before_done=0, result_redirect=target)
    with DidStub(behaviour) as stub:
        with pytest.raises(BackendFailed) as info:
            _did(stub).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_UNSAFE_URL"
    assert info.value.details["reason"] == "private_address"


def test_did_result_size_cap(tmp_path: Path) -> None:
    with DidStub(DidBehaviour(polls_before_done=0, result_bytes=b"v" * 5000)) as stub:
        with pytest.raises(BackendFailed) as info:
            _did(stub)._download(f"{stub.url}/results/t.mp4", tmp_path / "o.mp4", max_bytes=1000)
    assert info.value.code == "VIDEO_DID_DOWNLOAD"
    assert not (tmp_path / "o.mp4").exists()


def test_did_api_redirects_are_not_followed(tmp_path: Path) -> None:
    """The API client never follows a redirect (it would carry the API key elsewhere)."""
    engine = DidTalkingHead(EngineSettings(did_url="https://api.d-id.test", did_api_key="k"),
                            sleep=lambda s: None)
    assert engine.client.follow_redirects is False
    engine.close()
    engine._client = httpx.Client(transport=httpx.MockTransport(
        lambda r: httpx.Response(307, headers={"location": "https://169.254.169.254/"})),
        follow_redirects=False)
    with pytest.raises(BackendFailed) as info:
        engine.create_talk("s3://i", "s3://a", {})
    assert info.value.code == "VIDEO_DID_PROTOCOL"
