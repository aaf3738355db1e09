"""Outbound HTTP without becoming an SSRF proxy: the one implementation of the rules.

Every URL the studio fetches on someone's say-so (input URLs in ``app.fetch``, D-ID result
links in ``models.talking_head.did``) goes through :class:`SafeHttp`:

- only ``https`` (an operator-configured *trusted origin*, such as ``STUDIO_DID_URL``, is
  exempt: the operator chose it);
- no credentials in the URL; the host must be on the allow-list unless the rules allow any
  public host;
- every resolved address must be public: no loopback, private, link-local (which covers
  cloud metadata at 169.254.169.254), shared (100.64/10), multicast, reserved or unspecified
  addresses, IPv4-mapped / 6to4 / Teredo forms included;
- the connection goes to the address that was checked (the name is kept for TLS and the
  Host header), so DNS cannot change between the check and the use;
- redirects are followed by hand, at most ``max_redirects``, each one checked again;
- size (declared and streamed) and total time are capped.

Errors carry area-prefixed codes: ``{area}_INVALID_URL`` (``details.reason`` says which
rule), ``{area}_INPUT_TOO_LARGE``, ``{area}_INPUT_TIMEOUT``, ``{area}_INPUT_UNREACHABLE``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from models.errors import InvalidInput, PayloadTooLarge, TransientBackendError

Resolver = Callable[[str, int], list[str]]
Sink = Callable[[bytes], object]  # e.g. a file's write (what it returns is not read)
MAX_REDIRECTS = 3


class UrlRefused(InvalidInput):
    """A URL that breaks an outbound rule; ``details['reason']`` names the rule."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """Whether connecting to ``address`` reaches the public internet only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            return is_public_address(str(mapped))
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """``host`` equals an entry, or is a subdomain of an entry written ``.example.com``."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().strip().rstrip(".")
        if not entry:
            continue
        if entry.startswith("."):
            if host.endswith(entry) and host != entry[1:]:
                return True
        elif host == entry:
            return True
    return False


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` (port always written), or None for a malformed URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or port is None:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{host}:{port}"


@dataclass(frozen=True)
class OutboundRules:
    """What may be fetched. ``allowed_hosts`` entries: ``host`` or ``.suffix``."""

    allowed_hosts: tuple[str, ...] = ()
    any_public_host: bool = False
    trusted_origins: tuple[str, ...] = ()
    timeout: float = 20.0
    max_redirects: int = MAX_REDIRECTS


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    address: str | None  # the checked address to connect to; None for a trusted origin


@dataclass(frozen=True)
class Fetched:
    data: bytes
    filename: str | None
    content_type: str | None
    source: str  # "storage" | "url"


def refused(reason: str, message: str, message_ja: str, area: str,
            **details: object) -> UrlRefused:
    return UrlRefused(message, code=f"{area}_INVALID_URL", message_ja=message_ja,
                      details={"reason": reason, **details})


def too_large(max_bytes: int, area: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"The download is larger than {max_bytes / 1e6:.0f} MB.",
                           code=f"{area}_INPUT_TOO_LARGE",
                           message_ja=f"ダウンロードが大きすぎます（上限 {max_bytes / 1e6:.0f} MB）。",
                           details={"max_bytes": max_bytes})


class SafeHttp:
    """GET a URL under :class:`OutboundRules`, streaming into a sink or into memory."""

    def __init__(self, rules: OutboundRules, *, resolver: Resolver = system_resolver,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.rules = rules
        self.resolver = resolver
        self.transport = transport
        self._trusted = {o for o in (origin_of(u) for u in rules.trusted_origins) if o}

    def check(self, url: str, area: str) -> Target:
        """Validate one URL against the rules; returns where to connect."""
        if not url.strip() or len(url) > 2048 or any(
                ord(ch) < 32 or ch == "\x7f" for ch in url):
            raise refused("malformed", "The URL is empty or malformed.",
                          "URL が空か、形式が不正です。", area)
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise refused("malformed", "The URL is malformed.", "URL の形式が不正です。",
                          area) from None
        if parts.username or parts.password:
            raise refused("credentials", "URLs with credentials are not accepted.",
                          "認証情報を含む URL は使えません。", area)
        if origin_of(url) in self._trusted:
            return Target(url, host, port, None)
        if parts.scheme.lower() != "https":
            raise refused("scheme", "Only https URLs are accepted.",
                          "https の URL のみ使えます。", area, scheme=parts.scheme)
        if not host:
            raise refused("malformed", "The URL has no host.", "URL にホストがありません。",
                          area)
        if not self.rules.any_public_host and not host_allowed(host, self.rules.allowed_hosts):
            raise refused("host_not_allowed", f"The host {host!r} is not on the allow-list "
                          "(STUDIO_FETCH_ALLOWED_HOSTS).",
                          f"ホスト {host!r} は許可リストにありません。", area, host=host)
        literal = _literal_address(host)
        if literal is not None and not is_public_address(literal):
            raise refused("private_address", f"The address {host} is not public; refused.",
                          f"アドレス {host} は公開アドレスではありません。", area, host=host)
        addresses = [literal] if literal is not None else self.resolver(host, port)
        if not addresses:
            raise refused("unresolvable", f"The host {host!r} cannot be resolved.",
                          f"ホスト {host!r} を解決できません。", area, host=host)
        if any(not is_public_address(a) for a in addresses):
            raise refused("private_address", f"The host {host!r} resolves to a non-public "
                          "address; refused.", f"ホスト {host!r} は非公開アドレスを指しています。",
                          area, host=host)
        return Target(url, host, port, addresses[0])

    def stream(self, url: str, *, max_bytes: int, area: str,
               sink: Sink | None = None) -> Fetched:
        """GET ``url``; the body goes to ``sink`` chunk by chunk (then ``Fetched.data`` is
        empty) or is returned in memory. Redirects are re-checked hop by hop."""
        deadline = time.monotonic() + self.rules.timeout
        current = url
        with httpx.Client(transport=self.transport, timeout=self.rules.timeout,
                          follow_redirects=False, trust_env=False) as client:
            for _ in range(self.rules.max_redirects + 1):
                target = self.check(current, area)
                parts = urlsplit(current)
                request_url, headers, extensions = current, {}, {}
                if target.address is not None:  # connect to the checked address only
                    ip_host = f"[{target.address}]" if ":" in target.address else target.address
                    request_url = parts._replace(netloc=f"{ip_host}:{target.port}").geturl()
                    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
                    extensions = {"sni_hostname": target.host}
                try:
                    with client.stream("GET", request_url, headers=headers,
                                       extensions=extensions) as response:
                        if response.is_redirect:
                            current = urljoin(current, response.headers.get("location", ""))
                            continue
                        if response.status_code != 200:
                            raise refused("http_status", f"The URL answered HTTP "
                                          f"{response.status_code}.",
                                          f"URL が HTTP {response.status_code} を返しました。",
                                          area, status=response.status_code)
                        declared = response.headers.get("content-length") or "0"
                        if declared.isdigit() and int(declared) > max_bytes:
                            raise too_large(max_bytes, area)
                        chunks: list[bytes] = []
                        size = 0
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise too_large(max_bytes, area)
                            if time.monotonic() > deadline:
                                raise TransientBackendError(
                                    "The download took too long.", code=f"{area}_INPUT_TIMEOUT",
                                    message_ja="ダウンロードに時間がかかりすぎました。",
                                    details={"timeout_s": self.rules.timeout})
                            if sink is None:
                                chunks.append(chunk)
                            else:
                                sink(chunk)
                        name = parts.path.rsplit("/", 1)[-1] or None
                        return Fetched(b"".join(chunks), name,
                                       response.headers.get("content-type"), "url")
                except httpx.TimeoutException as exc:
                    raise TransientBackendError(
                        "The URL did not answer in time.", code=f"{area}_INPUT_TIMEOUT",
                        message_ja="URL が時間内に応答しませんでした。",
                        details={"timeout_s": self.rules.timeout}) from exc
                except httpx.HTTPError as exc:
                    raise TransientBackendError(
                        f"The URL could not be fetched: {type(exc).__name__}.",
                        code=f"{area}_INPUT_UNREACHABLE",
                        message_ja="URL から取得できませんでした。") from exc
        raise refused("redirects", "The URL redirects too many times.",
                      "URL のリダイレクトが多すぎます。", area)


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None
