"""The input fetcher refuses everything but the studio's own files and allow-listed public
https hosts, and re-checks redirects, sizes and addresses."""

from __future__ import annotations

import httpx
import pytest

from app.fetch import SafeFetcher, host_allowed, is_public_address, storage_key_of
from app.storage import LocalStorage
from models.errors import InvalidInput, NotFound, PayloadTooLarge


def resolver(table: dict[str, list[str]]):
    return lambda host, port: table.get(host, [])


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    store = LocalStorage(tmp_path / "files")
    store.put("inputs/images/a.png", b"png-bytes")
    return store


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
    "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "100.64.0.1",
    "224.0.0.1", "240.0.0.1", "not-an-ip"])
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


def test_public_addresses() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:2800:220:1:248:1893:25c8:1946")


def test_allow_list_matching() -> None:
    assert host_allowed("cdn.example.com", [".example.com"])
    assert not host_allowed("example.com", [".example.com"])
    assert host_allowed("example.com", ["example.com"])
    assert not host_allowed("evilexample.com", [".example.com", "example.com"])


def test_storage_references(storage: LocalStorage) -> None:
    fetcher = SafeFetcher(storage, public_url="https://studio.test")
    assert fetcher.fetch("/files/inputs/images/a.png", max_bytes=100).data == b"png-bytes"
    assert fetcher.fetch("inputs/images/a.png", max_bytes=100).data == b"png-bytes"
    assert fetcher.fetch("https://studio.test/files/inputs/images/a.png",
                         max_bytes=100).source == "storage"
    assert storage_key_of("https://elsewhere/files/x") is None
    with pytest.raises(NotFound):
        fetcher.fetch("/files/inputs/images/missing.png", max_bytes=100)
    with pytest.raises(InvalidInput):
        fetcher.fetch("/files/../../etc/passwd", max_bytes=100)
    with pytest.raises(PayloadTooLarge):
        fetcher.fetch("inputs/images/a.png", max_bytes=3)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://img.example.com/a.png", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("ftp://img.example.com/a.png", "scheme"),
    ("https://user:pw@img.example.com/a.png", "credentials"),
    ("https://other.org/a.png", "host_not_allowed"),
    ("https://127.0.0.1/a.png", "host_not_allowed"),
    ("https://169.254.169.254/latest/meta-data/", "host_not_allowed"),
    ("https://internal.example.com/a.png", "private_address"),
    ("https://nowhere.example.com/a.png", "unresolvable"),
])
def test_hostile_urls_are_refused(storage: LocalStorage, url: str, reason: str) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    fetcher = SafeFetcher(storage, allowed_hosts=[".example.com"], resolver=resolver({
        "img.example.com": ["93.184.216.34"], "internal.example.com": ["93.184.216.34", "10.0.0.5"],
    }), transport=httpx.MockTransport(never))
    with pytest.raises(InvalidInput) as info:
        fetcher.fetch(url, max_bytes=1000)
    assert info.value.code == "VIDEO_INVALID_URL"
    assert info.value.details["reason"] == reason


def test_pinned_fetch_and_redirect_recheck(storage: LocalStorage) -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["host"]))
        if request.headers["host"] == "img.example.com":
            if request.url.path == "/ok.png":
                return httpx.Response(200, content=b"x" * 10)
            return httpx.Response(302, headers={"location": "https://meta.example.com/x"})
        return httpx.Response(200, content=b"secret")

    fetcher = SafeFetcher(storage, allowed_hosts=[".example.com"], resolver=resolver({
        "img.example.com": ["93.184.216.34"], "meta.example.com": ["169.254.169.254"]}),
        transport=httpx.MockTransport(handler))
    got = fetcher.fetch("https://img.example.com/ok.png", max_bytes=100)
    assert got.data == b"x" * 10
    assert seen[0] == ("https://93.184.216.34/ok.png", "img.example.com")  # pinned address
    with pytest.raises(InvalidInput) as info:
        fetcher.fetch("https://img.example.com/redirect", max_bytes=100)
    assert info.value.details["reason"] == "private_address"
    assert all("169.254" not in url for url, _ in seen)


def test_size_cap_while_streaming(storage: LocalStorage) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"y" * 5000)

    fetcher = SafeFetcher(storage, allowed_hosts=["img.example.com"],
                          resolver=resolver({"img.example.com": ["93.184.216.34"]}),
                          transport=httpx.MockTransport(handler))
    with pytest.raises(PayloadTooLarge):
        fetcher.fetch("https://img.example.com/big.png", max_bytes=1000)
