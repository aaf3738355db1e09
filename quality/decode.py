"""An MP4's frames and sound as numpy arrays, through the ffmpeg binary of imageio-ffmpeg.

imageio-ffmpeg is already a dependency (the renderer encodes with it) and ships its own
ffmpeg, so the harness needs no system ffprobe: stream facts come from ``ffmpeg -i``'s header.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_RATE = 48000


@dataclass(frozen=True)
class Media:
    """Decoded picture and sound of one file."""

    frames: np.ndarray  # N x H x W x 3 uint8
    fps: float
    audio: np.ndarray  # samples x channels float32 (empty when the file has no sound)
    rate: int

    @property
    def video_seconds(self) -> float:
        return len(self.frames) / self.fps if self.fps else 0.0

    @property
    def audio_seconds(self) -> float:
        return len(self.audio) / self.rate

    @property
    def mono(self) -> np.ndarray:
        return self.audio.mean(axis=1) if self.audio.size else np.zeros(0, np.float32)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: Path) -> dict[str, object]:
    """Size, frame rate and audio channel count read from ffmpeg's description of the file."""
    out = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True, timeout=60).stderr
    video = re.search(r"Stream #.*Video: .*?(\d{2,5})x(\d{2,5})", out)
    if video is None:
        raise ValueError(f"{path}: no video stream ({out.strip().splitlines()[-1:]})")
    fps = re.search(r"([\d.]+) fps", out)
    audio = re.search(r"Stream #.*Audio: .*?(\d+) Hz, ([^,]+)", out)
    channels = 0
    if audio:
        layout = audio.group(2).strip()
        channels = {"mono": 1}.get(layout, 2)  # anything else is measured as stereo
    return {"width": int(video.group(1)), "height": int(video.group(2)),
            "fps": float(fps.group(1)) if fps else 25.0, "channels": channels}


def decode(path: str | Path, max_side: int = 0) -> Media:
    """Every frame (optionally scaled so the long side is ``max_side``) and the sound."""
    path = Path(path)
    facts = probe(path)
    w, h = int(facts["width"]), int(facts["height"])  # type: ignore[call-overload]
    vf: list[str] = []
    if max_side and max(w, h) > max_side:
        k = max_side / max(w, h)
        w, h = int(round(w * k / 2) * 2), int(round(h * k / 2) * 2)
        vf = ["-vf", f"scale={w}:{h}:flags=area"]
    raw = subprocess.run([_ffmpeg(), "-v", "error", "-i", str(path), *vf, "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-fps_mode", "passthrough", "-"],
                         capture_output=True, check=True, timeout=600).stdout
    frames = np.frombuffer(raw, np.uint8)
    frames = frames[: len(frames) // (w * h * 3) * (w * h * 3)].reshape(-1, h, w, 3)
    channels = int(facts["channels"])  # type: ignore[call-overload]
    audio = np.zeros((0, 1), np.float32)
    if channels:
        pcm = subprocess.run([_ffmpeg(), "-v", "error", "-i", str(path), "-vn", "-ac",
                              str(channels), "-ar", str(AUDIO_RATE), "-f", "f32le", "-"],
                             capture_output=True, check=True, timeout=600).stdout
        audio = np.frombuffer(pcm, np.float32).reshape(-1, channels)
    return Media(frames, float(facts["fps"]), audio, AUDIO_RATE)  # type: ignore[arg-type]
