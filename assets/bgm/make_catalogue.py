"""Rebuild the built-in music catalogue from the ``immich-memories-music`` package (MIT).

Run once by a maintainer: ``python assets/bgm/make_catalogue.py``. The chosen Opus files are
copied byte for byte (no second lossy encode) and ``manifest.json`` records title, mood,
duration, licence, source and checksum of each. The package has no "celebration" mood; its
brightest major-key electronic "happy" tracks (123 bpm) serve as celebration here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import soundfile as sf

HERE = Path(__file__).resolve().parent
PACKAGE = "immich-memories-music 0.1.0 (https://github.com/sdumont/immich-video-memory-generator)"
LICENCE = "MIT (AI-generated with ACE-Step 1.5; no attribution required)"

# id, title, mood, package file, tempo/key from the package's LICENSE-MUSIC
CHOSEN = [
    ("calm-acoustic", "Quiet Morning", "calm", "calm/calm_acoustic_1.opus", "68 bpm, C major"),
    ("happy-acoustic", "Sunny Steps", "happy", "happy/happy_acoustic_1.opus", "110 bpm, E major"),
    ("celebration-bright", "Party Lights", "celebration", "happy/happy_electronic_1.opus",
     "123 bpm, A major"),
    ("celebration-festive", "Festival Day", "celebration", "happy/happy_electronic_2.opus",
     "123 bpm, A major"),
    ("energetic-acoustic", "Full Speed", "energetic", "energetic/energetic_acoustic_1.opus",
     "132 bpm, D minor"),
    ("tender-acoustic", "Kind Words", "tender", "tender/tender_acoustic_1.opus",
     "90 bpm, G major"),
]


def main() -> None:
    from immich_memories_music import tracks_dir

    source_root = tracks_dir()
    tracks = []
    for track_id, title, mood, rel, tempo_key in CHOSEN:
        src = source_root / rel
        dst = HERE / f"{track_id}.opus"
        shutil.copyfile(src, dst)
        info = sf.info(str(dst))
        tracks.append({
            "id": track_id, "title": title, "mood": mood, "file": dst.name,
            "duration": round(info.frames / info.samplerate, 2),
            "sample_rate": info.samplerate, "channels": info.channels,
            "tempo_key": tempo_key, "licence": LICENCE,
            "source": f"{PACKAGE}: tracks/{rel}",
            "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(),
        })
    from importlib.metadata import distribution

    licence_file = next(f for f in distribution("immich-memories-music").files or ()
                        if f.name == "LICENSE-MUSIC")
    shutil.copyfile(licence_file.locate(), HERE / "LICENSE-MUSIC")
    manifest = {"moods": ["calm", "happy", "celebration", "energetic", "tender"],
                "tracks": tracks}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    total = sum((HERE / t["file"]).stat().st_size for t in tracks)
    print(f"{len(tracks)} tracks, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
