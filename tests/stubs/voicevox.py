"""A VOICEVOX-protocol engine on loopback, for tests and for trying the studio without one.

It speaks the real protocol over real HTTP: ``GET /version``, ``GET /speakers``,
``POST /audio_query?text=&speaker=`` (an AudioQuery with one mora per kana-ish character),
``POST /synthesis?speaker=`` -> a real 16-bit WAV whose length follows the query's mora
lengths, ``speedScale``, pre/post phoneme lengths and ``outputSamplingRate``, whose pitch
follows ``pitchScale`` (ln F0 times ``2**pitchScale``) and whose level follows ``volumeScale``.
Unknown style ids answer 422 (or 500 with ``old_engine=True``, as older engines did).

Faults to inject: ``fail_next`` (for the next requests, one item each: an HTTP status, a
``(status, headers)`` pair such as ``(429, {"Retry-After": "2"})``, or ``"malformed"`` (200
with broken JSON), ``"truncated_body"`` (a Content-Length longer than what is sent, then the
connection closes), ``"truncated_wav"`` (a real WAV cut in half, its header still claiming
the whole)), ``fail_paths`` (path -> status answered every time), ``delay`` (seconds before
answering), ``drop_styles`` (style ids removed after the first
``/speakers`` call, to make a cached id stale). ``requests`` records every call.

Run by hand: ``python -m tests.stubs.voicevox 50021``.
"""

from __future__ import annotations

import io
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

SPEAKERS: list[dict[str, Any]] = [
    {"name": "スタブ太郎", "speaker_uuid": "00000000-0000-4000-8000-000000000001",
     "styles": [{"id": 2, "name": "ノーマル", "type": "talk"},
                {"id": 3, "name": "あまあま", "type": "talk"}],
     "version": "0.0.1", "supported_features": {"permitted_synthesis_morphing": "ALL"}},
    {"name": "スタブ花子", "speaker_uuid": "00000000-0000-4000-8000-000000000002",
     "styles": [{"id": 8, "name": "ノーマル", "type": "talk"}],
     "version": "0.0.1", "supported_features": {"permitted_synthesis_morphing": "ALL"}},
]
VOWELS = "aiueo"


def _query(text: str) -> dict[str, Any]:
    phrases = []
    moras = []
    for ch in text:
        if ch in "、。！？!?,.\n ":
            if moras:
                phrases.append({"moras": moras, "accent": 1, "is_interrogative": ch in "？?",
                                "pause_mora": ({"text": "、", "consonant": None,
                                                "consonant_length": None, "vowel": "pau",
                                                "vowel_length": 0.3, "pitch": 0.0}
                                               if ch in "、," else None)})
                moras = []
            continue
        vowel = VOWELS[ord(ch) % 5]
        moras.append({"text": ch, "consonant": "k", "consonant_length": 0.04,
                      "vowel": vowel, "vowel_length": 0.08, "pitch": 5.5 + 0.1 * (len(moras) % 3)})
    if moras:
        phrases.append({"moras": moras, "accent": 1, "is_interrogative": False,
                        "pause_mora": None})
    return {"accent_phrases": phrases, "speedScale": 1.0, "pitchScale": 0.0,
            "intonationScale": 1.0, "volumeScale": 1.0, "prePhonemeLength": 0.1,
            "postPhonemeLength": 0.1, "pauseLength": None, "pauseLengthScale": 1.0,
            "outputSamplingRate": 24000, "outputStereo": False, "kana": text}


def render(query: dict[str, Any]) -> bytes:
    """AudioQuery -> a WAV of buzzy vowels at the moras' pitches (what a test can measure)."""
    import soundfile as sf

    rate = int(query.get("outputSamplingRate", 24000))
    speed = float(query.get("speedScale", 1.0))
    pitch_scale = float(query.get("pitchScale", 0.0))
    intonation = float(query.get("intonationScale", 1.0))
    volume = float(query.get("volumeScale", 1.0))
    pause_scale = float(query.get("pauseLengthScale", 1.0))
    pieces = [np.zeros(int(rate * float(query.get("prePhonemeLength", 0.1))))]
    pitches = [m["pitch"] for p in query["accent_phrases"] for m in p["moras"] if m["pitch"] > 0]
    mean = float(np.mean(pitches)) if pitches else 5.5
    phase = 0.0
    for phrase in query["accent_phrases"]:
        for mora in phrase["moras"]:
            seconds = ((mora.get("consonant_length") or 0) + mora["vowel_length"]) / speed
            n = int(seconds * rate)
            log_f0 = (mean + (mora["pitch"] - mean) * intonation) * 2 ** pitch_scale
            f0 = math.exp(log_f0)
            t = np.arange(n) / rate
            wave = np.sin(phase + 2 * np.pi * f0 * t) + 0.3 * np.sin(2 * (phase + 2 * np.pi * f0 * t))
            phase = float((phase + 2 * np.pi * f0 * n / rate) % (2 * np.pi))
            envelope = np.minimum(1.0, np.minimum(np.arange(n), n - np.arange(n)) / (0.005 * rate))
            pieces.append(0.25 * volume * wave * envelope)
        if phrase.get("pause_mora"):
            pieces.append(np.zeros(int(rate * 0.3 * pause_scale / speed)))
    pieces.append(np.zeros(int(rate * float(query.get("postPhonemeLength", 0.1)))))
    audio = np.concatenate(pieces).astype(np.float32)
    buffer = io.BytesIO()
    channels = np.stack([audio, audio], 1) if query.get("outputStereo") else audio
    sf.write(buffer, channels, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class VoicevoxStub:
    def __init__(self, port: int = 0, *, old_engine: bool = False) -> None:
        self.old_engine = old_engine
        self.fail_next: list[Any] = []
        self.fail_paths: dict[str, Any] = {}
        self.delay = 0.0
        self.drop_styles: set[int] = set()
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.queries: list[dict[str, Any]] = []
        self._speakers_calls = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json",
                      headers: dict[str, str] | None = None, length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                    if length is not None:  # promised more than sent: hang up
                        self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def _fault(self, fault: Any, path: str, params: Any, body: bytes) -> None:
                if fault == "malformed":
                    self._send(200, b'{"accent_phrases": [{"moras": [')
                elif fault == "truncated_body":
                    self._send(200, b"RIFF\x00\x10\x00\x00WAVE", "audio/wav", length=4096)
                elif fault == "truncated_wav":
                    wav = render(_query("あいうえお"))
                    self._send(200, wav[: len(wav) // 2], "audio/wav")
                else:
                    status, headers = fault if isinstance(fault, tuple) else (fault, {})
                    self._send(status, json.dumps({"detail": "injected failure"}).encode(),
                               headers=headers)

            def _json(self, status: int, value: Any) -> None:
                self._send(status, json.dumps(value, ensure_ascii=False).encode())

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                params = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.requests.append((method, url.path, params))
                    fail = stub.fail_next.pop(0) if stub.fail_next else None
                    if fail is None and url.path in stub.fail_paths:
                        fail = stub.fail_paths[url.path]
                if stub.delay:
                    time.sleep(stub.delay)
                if fail is not None:
                    self._fault(fail, url.path, params, body)
                    return
                stub.route(self, method, url.path, params, body)

            def do_GET(self) -> None:  # http.server's naming
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def styles(self) -> set[int]:
        ids = {s["id"] for sp in SPEAKERS for s in sp["styles"]}
        return ids - self.drop_styles if self._speakers_calls >= 1 else ids

    def route(self, h: Any, method: str, path: str, params: dict[str, list[str]],
              body: bytes) -> None:
        bad_style = 500 if self.old_engine else 422

        def style() -> int | None:
            try:
                value = int(params["speaker"][0])
            except (KeyError, ValueError, IndexError):
                return None
            return value if value in self.styles() else None

        if method == "GET" and path == "/version":
            h._json(200, "0.14.0-stub")
        elif method == "GET" and path == "/speakers":
            current = self.styles()
            self._speakers_calls += 1
            h._json(200, [dict(sp, styles=[s for s in sp["styles"] if s["id"] in current])
                          for sp in SPEAKERS])
        elif method == "POST" and path == "/audio_query":
            text = params.get("text", [""])[0]
            if style() is None or not text:
                h._json(bad_style, {"detail": [{"loc": ["query", "speaker"],
                                                "msg": "unknown style", "type": "value_error"}]})
                return
            h._json(200, _query(text))
        elif method == "POST" and path == "/synthesis":
            if style() is None:
                h._json(bad_style, {"detail": "unknown style"})
                return
            try:
                query = json.loads(body)
                self.queries.append(query)
                wav = render(query)
            except (ValueError, KeyError, TypeError):
                h._json(422, {"detail": "invalid AudioQuery"})
                return
            h._send(200, wav, "audio/wav")
        else:
            h._json(404, {"detail": "Not Found"})

    def __enter__(self) -> VoicevoxStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    with VoicevoxStub(int(sys.argv[1]) if len(sys.argv) > 1 else 50021) as running:
        print(f"VOICEVOX stub at {running.url}")
        running.thread.join()
