"""A stub of Bedrock runtime's Nova Canvas BACKGROUND_REMOVAL and of the seed's AWS MCP
gateway (``POST /bedrock/invoke``), on loopback.

Bedrock speaks rest-json: ``POST /model/{modelId}/invoke`` with the JSON body; errors carry
``x-amzn-ErrorType`` and ``{"message": ...}``. The "model" keys out the border colour: pixels
far from the median border colour are the subject. ``mode`` makes it misbehave on purpose:
``ok``, ``throttle`` (429, with ``Retry-After: retry_after``), ``reject`` (400
ValidationException), ``broken`` (500), ``garbage`` (200 with no images), ``malformed`` (200
with a body that is not JSON), ``truncated`` (200 with half a PNG), ``slow`` (answers after
``delay`` seconds). ``script`` lists modes for the next requests, before ``mode`` applies.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import numpy as np
from PIL import Image


def key_out_border(png: bytes) -> bytes:
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    ref = np.median(border, axis=0)
    alpha = (np.linalg.norm(image - ref, axis=-1) > 40).astype(np.uint8) * 255
    rgba = np.dstack([image.astype(np.uint8), alpha])
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


class BedrockStub:
    def __init__(self, s3_endpoint: str | None = None) -> None:
        self.mode = "ok"
        self.script: list[str] = []
        self.retry_after = "0"
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self.s3_endpoint = s3_endpoint
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any] | bytes,
                      error_type: str | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                if status == 429:
                    self.send_header("Retry-After", stub.retry_after)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_POST(self) -> None:  # http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                path = unquote(self.path)
                stub.requests.append({"path": path, "body": body})
                mode = self.mode = stub.script.pop(0) if stub.script else stub.mode
                if mode == "slow":
                    time.sleep(stub.delay)
                if mode == "malformed":
                    return self._send(200, b'{"images": ["iVBOR')
                if mode == "truncated" and path.endswith("/invoke") and "/model/" in path:
                    png = base64.b64decode(body["backgroundRemovalParams"]["image"])
                    half = key_out_border(png)
                    return self._send(200, {"images": [base64.b64encode(
                        half[: len(half) // 2]).decode()]})
                if mode == "throttle":
                    return self._send(429, {"message": "Too many requests"},
                                      "ThrottlingException")
                if mode == "reject":
                    return self._send(400, {"message": "blocked by content filters"},
                                      "ValidationException")
                if mode == "broken":
                    return self._send(500, {"message": "internal"}, "InternalServerException")
                if path.startswith("/model/") and path.endswith("/invoke"):
                    return self._bedrock(path, body)
                if path == "/bedrock/invoke":
                    return self._mcp(body)
                return self._send(404, {"message": f"no route {path}"})

            def _bedrock(self, path: str, body: dict[str, Any]) -> None:
                model = path[len("/model/"):-len("/invoke")]
                if model != "amazon.nova-canvas-v1:0" or body.get("taskType") != \
                        "BACKGROUND_REMOVAL":
                    return self._send(400, {"message": "unsupported"}, "ValidationException")
                if self.mode == "garbage":
                    return self._send(200, {"images": []})
                png = base64.b64decode(body["backgroundRemovalParams"]["image"])
                out = base64.b64encode(key_out_border(png)).decode()
                return self._send(200, {"images": [out], "error": None})

            def _mcp(self, body: dict[str, Any]) -> None:
                import boto3

                s3 = boto3.client("s3", endpoint_url=stub.s3_endpoint, region_name="us-east-1")
                src, dst = body["input"], body["output"]
                png = s3.get_object(Bucket=src["bucket"], Key=src["key"])["Body"].read()
                s3.put_object(Bucket=dst["bucket"], Key=dst["key"], Body=key_out_border(png))
                return self._send(200, {"success": True, "output": dst})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> BedrockStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
