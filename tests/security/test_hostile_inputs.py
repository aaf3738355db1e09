"""A hostile-input suite over every upload and JSON route.

The routes come from the app's own OpenAPI document (``/openapi.json``), so a new route is
covered without touching this file; POST routes that read their form by hand (no declared
body) get both the multipart and the JSON treatment. Inputs: path traversal in keys and
filenames (``../``, absolute, NUL, URL-encoded, backslashes), oversized and malformed media,
decompression and audio bombs, injection strings in text fields, huge and deeply nested
JSON, wrong content types, and hypothesis-made text and JSON.

Every answer: no 5xx, no traceback in any body, and a refusal (4xx) in the envelope with a
code of the route's own area (``VOICE_`` under ``/api/voice``, ...) or a shared one
(``VALIDATION_``, ``STORAGE_INVALID_KEY``, ``NOT_FOUND``). A traversal is refused with the
exact status and code its route gives for "no such thing" or "invalid key": a 2xx answer to
one fails, whatever else it does. After every batch: ``/health`` still 200, the sentinel
file outside the data dir unchanged, nothing new outside the data dir, and every file in the
data dir really inside it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import SECRET, wav
from tests.security.hostile import (
    FILE_FIELDS,
    FILENAMES,
    INJECTION,
    SHARED_CODES,
    TRAVERSAL,
    Studio,
    check,
    discover,
    hostile_files,
    not_found_code,
    outside_listing,
    refused,
    route_areas,
)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    from app.config import load_settings
    from app.main import create_app
    from app.services import build_services

    root = tmp_path_factory.mktemp("hostile")
    data_dir = root / "data"
    (root / "outside").mkdir()
    sentinel = root / "outside" / "sentinel.txt"
    sentinel.write_text("untouched")
    old = os.stat(sentinel)
    os.utime(sentinel, (old.st_atime - 3600, old.st_mtime - 3600))
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("STUDIO_") and key != "STUDIO_REQUIRE_SERVICES":
                mp.delenv(key)
        mp.chdir(root / "outside")
        settings_ = load_settings(data_dir=data_dir, queue_url="memory://", workers=0,
                                  jwt_secret=SECRET, rate_limit_per_minute=0, max_body_mb=4,
                                  tts_backends=["openjtalk"], talking_head_backends=["builtin"])
        services = build_services(settings_)
        with TestClient(create_app(services, with_ui=False),
                        raise_server_exceptions=False) as client:
            stat = sentinel.stat()
            yield Studio(client, services, root, data_dir, sentinel,
                         (stat.st_mtime, stat.st_size), outside_listing(root, data_dir),
                         discover(client.get("/openapi.json").json()))
        services.close()


# -------------------------------------------------------------------------- tests


def test_every_route_is_discovered(studio: Studio) -> None:
    """The suite really covers the upload and JSON routes (and sees new ones)."""
    found = {(r.method, r.path): r.body for r in studio.routes}
    for expected in [("POST", "/api/voice/synthesize"), ("POST", "/api/voice/profiles"),
                     ("POST", "/api/image/process"), ("POST", "/api/image/detect"),
                     ("POST", "/api/prosody/adjust"), ("POST", "/api/bgm/mix"),
                     ("POST", "/api/bgm/tracks"), ("POST", "/api/video/generate"),
                     ("PATCH", "/api/voice/profiles/{profile_id}")]:
        assert expected in found, expected
    assert found[("POST", "/api/image/process")] == "multipart"
    assert found[("POST", "/api/voice/synthesize")] == "json"


def test_traversal_in_path_parameters(studio: Studio) -> None:
    """An id with traversal in it names nothing: 404 with the route's own not-found code
    (or the envelope's ``NOT_FOUND`` where the value made the path another, unknown route).
    A 2xx is allowed only where the client itself (RFC 3986 dot segments: ``/jobs/.``)
    sent the request to the collection route, never to the route with the id."""
    for route in studio.routes:
        for name in route.params:
            for value in TRAVERSAL:
                for encoded in (quote(value, safe=""), quote(value, safe="/%")):
                    kw: dict[str, Any] = {}
                    if route.body in ("json", "any"):
                        kw["json"] = {"name": "x"}
                    url = route.url(**{name: encoded})
                    response = studio.send(route.method, url, **kw)
                    collection = route.path.split("/{")[0]
                    if response.is_success and response.url.path.rstrip("/") == collection:
                        continue  # "." removed by the client: the list, not a traversal
                    refused(response, (404,), (not_found_code(route), "NOT_FOUND"),
                            f"{route.method} {url[:120]}")
    studio.still_fine()


def test_traversal_in_storage_keys(studio: Studio) -> None:
    """Fields that name stored files: keys and URLs with traversal are refused."""
    for value in TRAVERSAL + ["file:///etc/passwd", "/files/../../etc/passwd",
                              "https://169.254.169.254/latest/meta-data/"]:
        for path, key_field in [("/api/prosody/adjust", "audio_key"),
                                ("/api/bgm/mix", "voice_key")]:
            area = path.split("/")[2].upper()
            response = studio.send("POST", path, data={key_field: value, "bgm_type": value})
            error = refused(response, (400,), (f"{area}_AUDIO_INVALID", "STORAGE_INVALID_KEY"),
                            f"{path} {value[:60]!r}")
            if error["code"].endswith("_AUDIO_INVALID"):  # the key itself was refused
                assert error["details"]["reason"] in ("key", "key_not_found"), error
        response = studio.send("POST", "/api/video/generate",
                               json={"image_url": value, "audio_url": value})
        refused(response, (400,), ("VIDEO_INVALID_URL", "VIDEO_INVALID_REQUEST",
                                   "STORAGE_INVALID_KEY"), f"video {value[:60]!r}")
    studio.still_fine()


@pytest.mark.parametrize("label", [label for label, _, _ in hostile_files()])
def test_hostile_files_on_every_upload_route(studio: Studio, label: str) -> None:
    data, ctype = next((d, c) for lab, d, c in hostile_files() if lab == label)
    for route in studio.routes:
        if route.body not in ("multipart", "any"):
            continue
        # every file field of the route at once, each under another hostile filename
        fields = route.file_fields or list(FILE_FIELDS)
        files = [(name, (FILENAMES[(i + len(label)) % len(FILENAMES)], data, ctype))
                 for i, name in enumerate(fields)]
        if label == "oversized":
            files = files[:1]
        form = {f: "x" for f in route.text_fields}
        form.update({"name": "x", "text": "こんにちは", "operations": '["framing"]'})
        response = studio.send(route.method, route.url(**{p: "x" for p in route.params}),
                               files=files, data=form)
        if label == "oversized":
            assert response.status_code == 413, (route.path, response.text[:200])
    studio.still_fine()


def test_many_files_and_filenames(studio: Studio) -> None:
    """Every hostile filename on a real clip, and more clips than allowed."""
    clip = wav(3.5, 24000)
    for filename in FILENAMES:
        what = f"filename {filename[:40]!r}"
        track = studio.send("POST", "/api/bgm/tracks",
                            files={"file": (filename, clip, "audio/wav")})
        if track.is_success:  # a real clip: kept under an id of the studio's own
            assert track.status_code == 201, what
            track_id = track.json()["data"]["track"]["id"]
            assert re.fullmatch(r"user-[0-9a-f]{12}", track_id), (what, track_id)
        else:
            refused(track, (400,), ("BGM_AUDIO_INVALID",), what)
        adjusted = studio.send("POST", "/api/prosody/adjust",
                               files={"audio": (filename, clip, "audio/wav")})
        if adjusted.is_success:  # stored under a key of the studio's own
            key = adjusted.json()["data"]["output_key"]
            assert re.fullmatch(r"prosody/[0-9a-f]{32}\.wav", key), (what, key)
        else:
            refused(adjusted, (400,), ("PROSODY_AUDIO_INVALID",), what)
    many = studio.send("POST", "/api/voice/profiles", data={"name": "x"},
                       files=[("audio_samples", (f"{i}.wav", b"RIFF", "audio/wav"))
                              for i in range(40)])
    refused(many, (400,), ("VOICE_SAMPLE_COUNT",), "40 clips")
    studio.still_fine()


@lru_cache(maxsize=1)
def _bodies() -> list[tuple[str, bytes | None, str | None]]:
    """(label, raw body, content type)."""
    deep = "[" * 50_000 + "]" * 50_000
    deep_obj = '{"a":' * 20_000 + "1" + "}" * 20_000
    return [
        ("deep array", deep.encode(), "application/json"),
        ("deep object", deep_obj.encode(), "application/json"),
        ("huge string", json.dumps({"text": "あ" * 1_000_000}).encode(), "application/json"),
        ("huge array", json.dumps({"text": "x", "options": list(range(300_000))}).encode(),
         "application/json"),
        ("many keys", json.dumps({f"k{i}": i for i in range(100_000)}).encode(),
         "application/json"),
        ("over the cap", b'{"text": "' + b"a" * (5 * 2**20) + b'"}', "application/json"),
        ("not utf-8", b'{"text": "\xff\xfe\xfa"}', "application/json"),
        ("not json", b"{text: 'x',}", "application/json"),
        ("top-level list", b"[1, 2, 3]", "application/json"),
        ("null", b"null", "application/json"),
        ("NaN", b'{"text": NaN, "seconds": Infinity}', "application/json"),
        ("big number", b'{"seconds": 1e999999, "priority": 99999999999999999999999}',
         "application/json"),
        ("xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                b"<x>&e;</x>", "application/xml"),
        ("plain text", b"hello", "text/plain"),
        ("form", b"text=hello&voice=../../x", "application/x-www-form-urlencoded"),
        ("no content type", b'{"text": "x"}', None),
        ("lying multipart", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx",
         "multipart/form-data; boundary=b"),
        ("multipart no boundary", b"garbage", "multipart/form-data"),
        ("empty", b"", "application/json"),
    ]


@pytest.mark.parametrize("label", [label for label, _, _ in _bodies()])
def test_hostile_bodies_on_every_body_route(studio: Studio, label: str) -> None:
    raw, ctype = next((b, c) for lab, b, c in _bodies() if lab == label)
    for route in studio.routes:
        if route.body == "none":
            continue
        headers = {"content-type": ctype} if ctype else {}
        response = studio.send(route.method, route.url(**{p: "x" for p in route.params}),
                               content=raw, headers=headers)
        if label == "over the cap":
            assert response.status_code == 413
    studio.still_fine()


def _fill(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """A body with every declared field set to ``value`` (and nested objects too)."""
    return {name: value if "$ref" not in prop else {"voice": value, "engine": value}
            for name, prop in schema.get("properties", {}).items()}


def test_injection_strings_in_every_text_field(studio: Studio) -> None:
    for route in studio.routes:
        url = route.url(**{p: "x" for p in route.params})
        for value in INJECTION:
            if route.body == "json":
                response = studio.send(route.method, url, json=_fill(route.schema, value))
            elif route.body in ("multipart", "any"):
                form = dict.fromkeys(route.text_fields or
                                     ["name", "text", "title", "mood", "bgm_type",
                                      "params", "voice", "emotion", "operations"], value)
                response = studio.send(route.method, url, data=form)
            else:
                continue
            # every field holds the string: no route takes that as a valid request
            refused(response, (400, 404, 413, 422), (*route_areas(route.path), *SHARED_CODES),
                    f"{route.method} {route.path} {value[:40]!r}")
    studio.still_fine()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=60),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=12), children, max_size=4),
    max_leaves=12)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_json_bodies(studio: Studio, data: st.DataObject) -> None:
    routes = [r for r in studio.routes if r.body == "json"]
    route = data.draw(st.sampled_from(routes), label="route")
    names = list(route.schema.get("properties", {})) + ["extra"]
    body = data.draw(st.dictionaries(st.sampled_from(names), JSON_VALUES, max_size=6)
                     | JSON_VALUES, label="body")
    studio.send(route.method, route.url(**{p: "x" for p in route.params}), json=body)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_form_fields_and_filenames(studio: Studio, data: st.DataObject) -> None:
    routes = [r for r in studio.routes if r.body in ("multipart", "any")]
    route = data.draw(st.sampled_from(routes), label="route")
    names = route.text_fields or ["name", "text", "params", "bgm_type", "audio_key", "mood"]
    form = data.draw(st.dictionaries(st.sampled_from(names), st.text(max_size=200),
                                     max_size=4), label="form")
    fields = route.file_fields or list(FILE_FIELDS)
    files = {}
    if data.draw(st.booleans(), label="with file"):
        name = data.draw(st.sampled_from(fields), label="file field")
        filename = data.draw(st.text(max_size=80), label="filename")
        blob = data.draw(st.binary(max_size=2048), label="bytes")
        files = {name: (filename, blob, "application/octet-stream")}
    studio.send(route.method, route.url(**{p: "x" for p in route.params}), data=form,
                files=files or None)


def test_still_serving_at_the_end(studio: Studio) -> None:
    studio.still_fine()
    assert studio.send("GET", "/api/voice/voices").status_code == 200


def test_files_route_is_not_an_open_directory(client, settings) -> None:
    """With authentication off: traversal and directory listing under /files are refused."""
    (settings.data_dir / "inputs" / "images").mkdir(parents=True, exist_ok=True)
    for url in ["/files/", "/files/inputs", "/files/inputs/images/", "/files/../../etc/passwd",
                "/files/%2e%2e/%2e%2e/etc/passwd", "/files/..%2F..%2Fetc%2Fpasswd",
                "/files/inputs/%00", "/files//etc/passwd", "/files/inputs\\..\\..\\x",
                "/files/" + quote("/etc/passwd", safe="")]:
        response = client.get(url)
        check(response, url)
        assert response.status_code in (400, 404), (url, response.status_code)
        assert "root:" not in response.text

