"""Is the matched speech still understood? Word error rate of an offline English recogniser
on the English outputs that ``bench/voice_evolve.py`` wrote.

    .venv/bin/pip install pocketsphinx   # bench only; its wheel ships the en-us model
    .venv/bin/python bench/voice_intelligibility.py [--dir bench/out/voice_evolve]

PocketSphinx is a weak recogniser (it misses words in clean speech too), so read the
numbers against the default voice's row: a voice conversion that smears sounds shows as
a higher error than its source, not as an absolute figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.voice import table  # noqa: E402
from bench.voice_evolve import MESSAGES, OUT  # noqa: E402
from bench.voice_listen import word_error_rate  # noqa: E402

RATE = 16000


def recognise(path: Path) -> str:
    import librosa
    from pocketsphinx import Decoder

    samples, rate = sf.read(str(path), dtype="float32")
    if rate != RATE:
        samples = librosa.resample(samples, orig_sr=rate, target_sr=RATE)
    pcm = (np.clip(samples / (np.abs(samples).max() + 1e-9) * 0.8, -1, 1) * 32767)
    decoder = Decoder(samprate=RATE, logfn="/dev/null")
    decoder.start_utt()
    decoder.process_raw(pcm.astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=OUT)
    args = parser.parse_args()
    rows: list[list[str]] = []
    by_voice: dict[str, list[float]] = {}
    for path in sorted(args.dir.glob("*_en.wav")):
        speaker, voice, _ = path.stem.split("_")
        heard = recognise(path)
        error = word_error_rate(MESSAGES["en"], heard)
        by_voice.setdefault(voice, []).append(error)
        rows.append([speaker, voice, f"{error:.2f}", heard])
    print(table(["speaker", "voice", "WER", "heard"], rows))
    print()
    print(table(["voice", "mean WER"],
                [[v, f"{np.mean(e):.2f}"] for v, e in sorted(by_voice.items())]))


if __name__ == "__main__":
    main()
