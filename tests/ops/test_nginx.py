"""deploy/nginx/studio.conf passes ``nginx -t`` (with throw-away certificates standing in for
Let's Encrypt's), upgrades websockets, and its upload size and timeouts fit the studio's
limits."""

from __future__ import annotations

import inspect
import re
import subprocess
from pathlib import Path

import pytest

from app.runner.unstaged import UnstagedRunner
from pipelines.media import LIMITS
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx" / "studio.conf"
LE_LIVE = "/etc/letsencrypt/live/"


def size_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(s|m|h)?", value).groups()
    return int(number) * {None: 1, "s": 1, "m": 60, "h": 3600}[unit]


def directive(name: str, text: str | None = None) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", text or CONF.read_text(), re.M)


def nginx_test(tmp_path: Path, conf_text: str) -> subprocess.CompletedProcess:
    """Run ``nginx -t`` on ``conf_text`` inside a minimal main config, certificates made
    here with openssl at the paths certbot would use."""
    nginx = require_binary("nginx")
    openssl = require_binary("openssl")
    live = tmp_path / "letsencrypt" / "live"
    for name in sorted(set(re.findall(re.escape(LE_LIVE) + r"([^/]+)/", conf_text))):
        folder = live / name
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", f"/CN={name}", "-keyout", str(folder / "privkey.pem"),
             "-out", str(folder / "fullchain.pem")],
            check=True, capture_output=True, timeout=60)
    site = tmp_path / "studio.conf"
    site.write_text(conf_text.replace(LE_LIVE, f"{live}/"))
    main = tmp_path / "nginx.conf"
    main.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {site};
}}
""")
    return subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                           "-c", str(main)], capture_output=True, text=True, timeout=60)


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    result = nginx_test(tmp_path, CONF.read_text())
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_rejects_a_broken_config(tmp_path: Path) -> None:
    """The check bites: a misspelt directive fails."""
    broken = CONF.read_text().replace("proxy_read_timeout 1900s;", "proxy_read_timout 1900s;")
    result = nginx_test(tmp_path, broken)
    assert result.returncode != 0
    assert "proxy_read_timout" in result.stderr


def test_tls_from_lets_encrypt_and_http_redirects() -> None:
    text = CONF.read_text()
    certs = directive("ssl_certificate")
    assert certs and all(c.startswith(LE_LIVE) and c.endswith("/fullchain.pem") for c in certs)
    assert all(k.endswith("/privkey.pem") for k in directive("ssl_certificate_key"))
    assert "/.well-known/acme-challenge/" in text
    assert "return 301 https://$host$request_uri" in text
    assert all("TLSv1 " not in p and "TLSv1.1" not in p for p in directive("ssl_protocols"))


def test_websockets_are_upgraded() -> None:
    headers = directive("proxy_set_header")
    assert "Upgrade $http_upgrade" in headers
    assert "Connection $studio_connection" in headers
    assert re.search(r"map \$http_upgrade \$studio_connection \{[^}]*default upgrade;",
                     CONF.read_text())
    assert "1.1" in directive("proxy_http_version")


def test_upload_size_and_timeouts_fit_the_studio() -> None:
    studio_server = CONF.read_text().split("server_name studio.example.com;")[1]
    studio_server = studio_server.split("server_name s3.example.com;")[0]
    [body] = directive("client_max_body_size", studio_server)
    largest = max(LIMITS.audio_max_bytes, LIMITS.image_max_bytes, LIMITS.bgm_max_bytes)
    assert size_bytes(body) >= largest + LIMITS.image_max_bytes, "audio + photo must fit"
    job_timeout = inspect.signature(UnstagedRunner.__init__).parameters["job_timeout"].default
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        [value] = directive(name, studio_server)
        assert seconds(value) > job_timeout, f"{name} shorter than the longest job"


@pytest.mark.parametrize(("value", "expected"), [("64m", 64 * 1024**2), ("10k", 10240), ("7", 7)])
def test_size_parser(value: str, expected: int) -> None:
    assert size_bytes(value) == expected
