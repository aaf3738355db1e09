"""A Hugging Face Hub file server stand-in over real HTTP on loopback (what ``HF_ENDPOINT``
points at). It speaks the documented resolve protocol: ``HEAD/GET /{repo}/resolve/{rev}/{file}``;
large (LFS) files answer 302 to a content URL with ``X-Linked-Etag`` (the sha256) and
``X-Linked-Size``, small files answer 200 with ``ETag`` (the git blob sha1); the content URL
honours ``Range``. It can be told to corrupt a file, drop the connection half-way, or hang.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_MIN = 1024  # files this big or bigger are served as LFS files


@dataclass
class HubBehaviour:
    files: dict[str, bytes] = field(default_factory=dict)  # "repo/id/path" -> content
    corrupt: set[str] = field(default_factory=set)  # serve flipped bytes under the true etag
    drop_after: dict[str, int] = field(default_factory=dict)  # key -> bytes sent then close
    hang: bool = False  # accept, read the request, never answer
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


class HubStub:
    def __init__(self, behaviour: HubBehaviour | None = None) -> None:
        self.behaviour = behaviour or HubBehaviour()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.release = threading.Event()  # ends hanging requests

    def __enter__(self) -> HubStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            self.behaviour.files[f"{repo_id}/{name}"] = data

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:  # http.server's naming
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                b = stub.behaviour
                b.requests.append((self.command, self.path, self.headers.get("Range")))
                if b.hang:
                    stub.release.wait(30)
                    self.close_connection = True  # hang up without an answer
                    return
                if self.path.startswith("/cdn/"):
                    self._content(self.path[len("/cdn/"):], body)
                    return
                repo_path, sep, rest = self.path.lstrip("/").partition("/resolve/")
                _rev, _, name = rest.partition("/")
                key = f"{repo_path}/{name}"
                if not sep or key not in b.files:
                    self._send(404, {"X-Error-Code": "EntryNotFound"}, b"not found")
                    return
                data = b.files[key]
                if len(data) >= LFS_MIN:
                    self._send(302, {"Location": f"/cdn/{key}",
                                     "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                                     "X-Linked-Size": str(len(data)),
                                     "ETag": f'"{git_blob_sha1(data)}"',
                                     "X-Repo-Commit": "0" * 40}, b"")
                    return
                self._content(key, body, etag=git_blob_sha1(data))

            def _content(self, key: str, body: bool, etag: str | None = None) -> None:
                b = stub.behaviour
                data = b.files[key]
                if key in b.corrupt:
                    data = bytes(x ^ 0xFF for x in data[:16]) + data[16:]
                start = 0
                status = 200
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    status = 206
                headers = {"Content-Length": str(len(data) - start),
                           "X-Repo-Commit": "0" * 40}
                if etag:
                    headers["ETag"] = f'"{etag}"'
                if status == 206:
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if not body:
                    return
                chunk = data[start:]
                drop = b.drop_after.pop(key, None)
                if drop is not None:
                    self.wfile.write(chunk[:drop])
                    self.wfile.flush()
                    time.sleep(0.05)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)

            def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        return Handler
