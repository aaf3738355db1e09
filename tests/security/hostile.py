"""The hostile-input suite's material: the payloads (traversal, injection, bombs, truncated
media), the studio it probes and the routes read from its OpenAPI document, and the checks
every answer must pass (tests/security/test_hostile_inputs.py)."""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from tests.security.conftest import ALICE, png, wav

# ------------------------------------------------------------------------ payloads

TRAVERSAL = [
    "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252fetc%252fpasswd", "/etc/passwd", "..\\..\\windows\\win.ini",
    "a%00b", "inputs/images/../../../etc/passwd", "openvoice_../../x", "....//....//etc/passwd",
    "C:\\boot.ini", "~root/.ssh/id_rsa", "x" * 3000, "%", ".", "..",
]
INJECTION = [
    "'; DROP TABLE jobs; --", "\" OR \"1\"=\"1", "{{7*7}}${7*7}<%= 7*7 %>",
    "${jndi:ldap://127.0.0.1/a}", "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "$(touch /tmp/pwned)`id`; rm -rf /", "\x00\x01\x02\x1b[2J", "\u202e\u200b\ufeff",
    "%s%s%s%n", "../../etc/passwd", "file:///etc/passwd", "http://169.254.169.254/latest/",
    "A" * 20000, "こんにちは" * 500, "\ud7ff\ue000\U0010ffff",
]
FILENAMES = ["../../etc/passwd", "/etc/passwd", "a\x00.wav", "..\\..\\x.wav", "%2e%2e%2fx.wav",
             "x" * 600 + ".wav", "", "CON", ".htaccess", "😀.wav"]
FILE_FIELDS = ("file", "audio", "voice_audio", "bgm_audio", "image", "background_image",
               "audio_samples", "track", "photo")


def _flac_bomb() -> bytes:
    """One hour of silence: half a megabyte that decodes to 700 MB of float samples."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(48000 * 3600, np.int16), 48000, format="FLAC")
    return buffer.getvalue()


def _wav_header_bomb() -> bytes:
    """A WAV whose header declares 2 GB of 8-channel 384 kHz audio, followed by 1 KB."""
    header = (b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + b"fmt "
              + struct.pack("<IHHIIHH", 16, 1, 8, 384000, 384000 * 16, 16, 16)
              + b"data" + struct.pack("<I", 0x7FFFFFF0))
    return header + b"\x00" * 1024


def _png_bomb() -> bytes:
    """30000 x 30000 pixels in about 100 KB."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, format="PNG")
    return buffer.getvalue()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 3]


@lru_cache(maxsize=1)
def hostile_files() -> list[tuple[str, bytes, str]]:
    """(label, bytes, content type)."""
    good_wav, good_png = wav(1.0), png()
    return [
        ("empty", b"", "application/octet-stream"),
        ("random", np.random.default_rng(8).bytes(4096), "audio/wav"),
        ("truncated wav", _truncated(good_wav), "audio/wav"),
        ("truncated png", _truncated(good_png), "image/png"),
        ("wav header bomb", _wav_header_bomb(), "audio/wav"),
        ("flac audio bomb", _flac_bomb(), "audio/flac"),
        ("png pixel bomb", _png_bomb(), "image/png"),
        ("png polyglot", good_png + b"<?php system($_GET['c']); ?>", "image/png"),
        ("html as image", b"<html><script>alert(1)</script></html>", "image/png"),
        ("wav as png", good_wav, "image/png"),
        ("oversized", b"\x00" * (5 * 2**20), "audio/wav"),  # over the 4 MB body cap
    ]


# --------------------------------------------------------------------- the studio


@dataclass
class Route:
    method: str
    path: str
    body: str  # "json" | "multipart" | "any"
    text_fields: list[str] = field(default_factory=list)
    file_fields: list[str] = field(default_factory=list)
    schema: dict[str, Any] = field(default_factory=dict)

    def url(self, **values: str) -> str:
        url = self.path
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        return url

    @property
    def params(self) -> list[str]:
        return [p.strip("{}") for p in self.path.split("/") if p.startswith("{")]


@dataclass
class Studio:
    client: TestClient
    services: Any
    root: Path
    data_dir: Path
    sentinel: Path
    sentinel_stat: tuple[float, int]
    outside: set[str]
    routes: list[Route]

    def send(self, method: str, url: str, **kw: Any) -> Any:
        headers = {**ALICE, **kw.pop("headers", {})}
        response = self.client.request(method, url, headers=headers, **kw)
        check(response, f"{method} {url[:120]}")
        return response

    def still_fine(self) -> None:
        assert self.client.get("/health").status_code == 200
        stat = self.sentinel.stat()
        assert (stat.st_mtime, stat.st_size) == self.sentinel_stat
        assert self.sentinel.read_text() == "untouched"
        assert outside_listing(self.root, self.data_dir) == self.outside
        data = self.data_dir.resolve()
        for path in self.data_dir.rglob("*"):
            assert path.resolve().is_relative_to(data), path
            assert path.name not in ("passwd", "win.ini", "id_rsa", "boot.ini", "pwned")


# a refusal's code names the area of the route that gave it (DESIGN.md), or is shared
AREAS = {"voice": "VOICE_", "bgm": "BGM_", "image": "IMAGE_", "prosody": "PROSODY_",
         "video": "VIDEO_", "jobs": "QUEUE_", "messages": "QUEUE_"}
SHARED_CODES = ("VALIDATION_", "STORAGE_INVALID_KEY", "NOT_FOUND", "AUTH_")
# the one-click message takes a photo, words, a voice, a mood: each checked by its own area
MESSAGE_ROUTE = "/api/video/generate"
MESSAGE_AREAS = ("IMAGE_", "VOICE_", "PROSODY_", "BGM_", "VIDEO_")
# what each route with an id in its path answers for an id that names nothing
NOT_FOUND_CODES = {
    "/api/jobs/": "QUEUE_JOB_NOT_FOUND", "/api/messages/": "QUEUE_JOB_NOT_FOUND",
    "/api/voice/profiles/": "VOICE_PROFILE_NOT_FOUND", "/api/voice/status/": "VOICE_TASK_NOT_FOUND",
    "/api/image/status/": "IMAGE_TASK_NOT_FOUND", "/api/video/status/": "VIDEO_TASK_NOT_FOUND",
    "/api/bgm/tracks/": "BGM_TRACK_NOT_FOUND",
}


def check(response: Any, what: str) -> None:
    text = response.text if "json" in response.headers.get("content-type", "") or \
        response.status_code >= 400 else ""
    assert response.status_code < 500, f"{what}: {response.status_code} {text[:300]}"
    assert "Traceback" not in text and 'File "/' not in text, f"{what}: {text[:300]}"
    assert "root:x:0:0" not in text, what
    if response.status_code >= 400 and text:
        body = response.json()
        assert body["success"] is False and body["error"]["code"], what
        code = body["error"]["code"]
        areas = route_areas(response.url.path)
        assert code.startswith((*areas, *SHARED_CODES)), f"{what}: {code} is not {areas}"


def route_areas(path: str) -> tuple[str, ...]:
    """The code prefixes a route's refusals may carry besides the shared ones."""
    if path.rstrip("/") == MESSAGE_ROUTE:
        return MESSAGE_AREAS
    parts = path.split("/")
    area = AREAS.get(parts[2]) if len(parts) > 2 and parts[1] == "api" else None
    return (area,) if area else ("",)


def refused(response: Any, statuses: tuple[int, ...], codes: tuple[str, ...], what: str
            ) -> dict[str, Any]:
    """The answer is exactly a refusal: one of ``statuses``, one of ``codes`` in the error
    envelope (a code ending in ``_`` stands for its prefix). Returns the error."""
    assert response.status_code in statuses, \
        f"{what}: {response.status_code}, not a refusal {statuses}: {response.text[:200]}"
    error = response.json()["error"]
    exact = {c for c in codes if not c.endswith("_")}
    prefixes = tuple(c for c in codes if c.endswith("_"))
    assert error["code"] in exact or (prefixes and error["code"].startswith(prefixes)), \
        f"{what}: {error['code']} not in {codes}"
    return error


def not_found_code(route: Route) -> str:
    code = next((code for prefix, code in NOT_FOUND_CODES.items()
                 if route.path.startswith(prefix)), None)
    assert code, f"{route.path}: a new route with an id in its path; add the code it gives " \
                 "for an id that names nothing to NOT_FOUND_CODES"
    return code


def outside_listing(root: Path, data_dir: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if not p.is_relative_to(data_dir)}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return spec["components"]["schemas"][name]
    return schema


def discover(spec: dict[str, Any]) -> list[Route]:
    routes = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            method = method.upper()
            content = op.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:  # (a route may take JSON as well)
                schema = _resolve(spec, content["multipart/form-data"].get("schema", {}))
                props = schema.get("properties", {})

                def is_file(p: dict[str, Any]) -> bool:
                    return "binary" in json.dumps(p) or "contentMediaType" in json.dumps(p)

                routes.append(Route(method, path, "multipart",
                                    [k for k, v in props.items() if not is_file(v)],
                                    [k for k, v in props.items() if is_file(v)], schema))
            if "application/json" in content:
                schema = _resolve(spec, content["application/json"].get("schema", {}))
                routes.append(Route(method, path, "json", schema=schema,
                                    text_fields=list(schema.get("properties", {}))))
            if content:
                continue
            if method in ("POST", "PUT", "PATCH"):
                routes.append(Route(method, path, "any", file_fields=list(FILE_FIELDS)))
            else:
                routes.append(Route(method, path, "none"))
    return routes


