"""A D-ID talks API stand-in over real HTTP on loopback (stdlib server, one thread per
request). It speaks the documented protocol — ``POST /images``, ``POST /audios``,
``POST /talks``, ``GET /talks/{id}``, ``DELETE /talks/{id}`` with Basic auth and D-ID's
error shape — and can be told to be slow, fail, reject, or rate-limit.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class DidBehaviour:
    key: str = "user:secret"
    polls_before_done: int = 1  # GET /talks/{id} answers 'started' this many times first
    final_status: str = "done"  # or "error" / "rejected"
    rate_limit_first: int = 0  # answer 429 to this many requests first
    retry_after: str = "0"
    result_bytes: bytes = b""
    result_url: str | None = None  # where 'done' talks point (default: this stub's /results)
    result_redirect: str | None = None  # GET /results/... answers 302 to this
    truncate_result: bool = False  # declare the full length, send half, close
    malformed_json: bool = False  # GET /talks/{id} answers 200 with a broken JSON body
    fail_status: list[int] = field(default_factory=list)  # answer these to the next requests
    delay: float = 0.0  # seconds before answering an API call
    requests: list[tuple[str, str]] = field(default_factory=list)
    talks: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)


class DidStub:
    def __init__(self, behaviour: DidBehaviour | None = None) -> None:
        self.behaviour = behaviour or DidBehaviour()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.lock = threading.Lock()

    def __enter__(self) -> DidStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "video/mp4" if isinstance(body, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _gate(self) -> bool:
                b = stub.behaviour
                if b.delay:
                    import time

                    time.sleep(b.delay)
                with stub.lock:
                    b.requests.append((self.command, self.path))
                    if b.fail_status:
                        status = b.fail_status.pop(0)
                        self._send(status, {"kind": "InternalServerError",
                                            "description": "injected"},
                                   {"Retry-After": b.retry_after} if status == 429 else None)
                        return False
                    if b.rate_limit_first > 0:
                        b.rate_limit_first -= 1
                        self._send(429, {"kind": "TooManyRequests",
                                         "description": "slow down"},
                                   {"Retry-After": b.retry_after})
                        return False
                if self.headers.get("Authorization") != f"Basic {b.key}":
                    self._send(401, {"kind": "AuthorizationError",
                                     "description": "Unauthorized"})
                    return False
                return True

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:
                if not self._gate():
                    return
                b = stub.behaviour
                body = self._body()
                if self.path in ("/images", "/audios"):
                    field_name = "image" if self.path == "/images" else "audio"
                    ctype = self.headers.get("Content-Type", "")
                    if not ctype.startswith("multipart/form-data") or (
                            f'name="{field_name}"'.encode() not in body):
                        self._send(400, {"kind": "BadRequestError",
                                         "description": f"missing {field_name}"})
                        return
                    item = uuid.uuid4().hex[:8]
                    b.uploads[item] = body
                    self._send(201, {"id": item,
                                     "url": f"s3://d-id-{self.path[1:]}-prod/{item}"})
                    return
                if self.path == "/talks":
                    try:
                        req = json.loads(body)
                        if not (req["source_url"] and req["script"]["type"] == "audio"
                                and req["script"]["audio_url"]):
                            raise ValueError("incomplete talk")
                    except (ValueError, KeyError, TypeError):
                        self._send(400, {"kind": "ValidationError",
                                         "description": "bad talk request"})
                        return
                    talk = "tlk_" + uuid.uuid4().hex[:12]
                    b.talks[talk] = {"request": req, "polls": 0, "deleted": False}
                    self._send(201, {"id": talk, "object": "talk", "status": "created"})
                    return
                self._send(404, {"kind": "NotFoundError", "description": "no route"})

            def do_GET(self) -> None:
                b = stub.behaviour
                if self.path.startswith("/results/"):  # signed result link: no auth
                    with stub.lock:
                        b.requests.append((self.command, self.path))
                    if b.result_redirect:
                        self.send_response(302)
                        self.send_header("Location", b.result_redirect)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    elif b.truncate_result:
                        self.send_response(200)
                        self.send_header("Content-Type", "video/mp4")
                        self.send_header("Content-Length", str(len(b.result_bytes)))
                        self.end_headers()
                        self.wfile.write(b.result_bytes[: len(b.result_bytes) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                    else:
                        self._send(200, b.result_bytes)
                    return
                if not self._gate():
                    return
                talk_id = self.path.rsplit("/", 1)[-1]
                talk = b.talks.get(talk_id)
                if not self.path.startswith("/talks/") or talk is None:
                    self._send(404, {"kind": "NotFoundError", "description": "talk not found"})
                    return
                talk["polls"] += 1
                data: dict[str, Any] = {"id": talk_id, "status": "started",
                                        "driver_url": talk["request"].get("driver_url")}
                if talk["polls"] > b.polls_before_done:
                    data["status"] = b.final_status
                    if b.final_status == "done":
                        data["result_url"] = b.result_url or f"{stub.url}/results/{talk_id}.mp4"
                    elif b.final_status == "error":
                        data["error"] = {"kind": "FaceError", "description": "no face found"}
                if b.malformed_json:
                    self._send(200, b'{"id": "' + talk_id.encode() + b'", "status": ')
                    return
                self._send(200, data)

            def do_DELETE(self) -> None:
                if not self._gate():
                    return
                talk = stub.behaviour.talks.get(self.path.rsplit("/", 1)[-1])
                if talk is None:
                    self._send(404, {"kind": "NotFoundError", "description": "talk not found"})
                    return
                talk["deleted"] = True
                self._send(200, {"deleted": 1})

        return Handler
