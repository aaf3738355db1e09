"""``/openapi.json`` shows each route's answer: the envelope of DESIGN.md around the route's
own data shape, and the error envelope for refused requests. The answers themselves stay as
they were (the routes still send their ``ok(...)`` JSON as it is)."""

from __future__ import annotations

from typing import Any


def _answer_schema(spec: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    content = spec["paths"][path][method]["responses"][status]["content"]
    ref = content["application/json"]["schema"]["$ref"]
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def test_routes_document_their_data_in_the_envelope(client) -> None:
    spec = client.get("/openapi.json").json()
    expected = {  # (path, method, status): fields the data must document
        ("/api/image/detect", "post", "200"): {"people", "width", "height",
                                               "default_selection"},
        ("/api/image/process", "post", "202"): {"task_id", "status_url", "operations"},
        ("/api/image/status/{task_id}", "get", "200"): {"task_id", "status", "progress"},
        ("/api/prosody/adjust", "post", "200"): {"output_url", "duration",
                                                 "changes_applied"},
        ("/api/bgm/mix", "post", "200"): {"output_url", "bitrate", "mixing_details"},
        ("/api/bgm/tracks", "get", "200"): {"tracks", "moods"},
        ("/api/jobs", "get", "200"): {"jobs", "counts", "queue_depth"},
        ("/api/jobs/{job_id}", "get", "200"): {"job_id", "status", "stages"},
        ("/api/voice/synthesize", "post", "200"): {"audio_url", "duration", "sentences"},
        ("/api/voice/profiles", "post", "202"): {"task_id", "steps", "status_url"},
        ("/api/video/generate", "post", "202"): {"task_id", "status_url", "did_talk_id"},
        ("/api/video/status/{task_id}", "get", "200"): {"task_id", "status", "progress"},
        ("/api/messages", "get", "200"): {"messages"},
    }
    for (path, method, status), fields in expected.items():
        envelope = _answer_schema(spec, path, method, status)
        assert set(envelope["properties"]) == {"success", "data", "metadata"}, path
        assert {"data", "metadata"} <= set(envelope["required"]), path
        data = _resolve(spec, envelope["properties"]["data"])
        assert fields <= set(data["properties"]), (path, set(data["properties"]))
        meta = _resolve(spec, envelope["properties"]["metadata"])
        assert {"timestamp", "service", "version"} <= set(meta["properties"])


def test_refusals_document_the_error_envelope(client) -> None:
    spec = client.get("/openapi.json").json()
    for path, method in (("/api/image/detect", "post"), ("/api/voice/synthesize", "post"),
                         ("/api/video/status/{task_id}", "get")):
        envelope = _answer_schema(spec, path, method, "400" if method == "post" else "404")
        assert set(envelope["properties"]) == {"success", "error", "metadata"}
        error = _resolve(spec, envelope["properties"]["error"])
        assert {"code", "message", "details"} <= set(error["properties"])


def test_documented_answer_matches_the_wire(client) -> None:
    """The documented envelope is the one sent: a real answer has exactly its keys."""
    body = client.get("/api/prosody/presets").json()
    assert set(body) == {"success", "data", "metadata"} and body["success"] is True
    spec = client.get("/openapi.json").json()
    data = _resolve(spec, _answer_schema(spec, "/api/prosody/presets", "get", "200")
                    ["properties"]["data"])
    assert set(data["required"]) <= set(body["data"])
