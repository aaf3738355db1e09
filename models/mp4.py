"""Stream raw RGB frames into ffmpeg and mux them with audio: H.264 + AAC, yuv420p, faststart.

The ffmpeg binary is the one imageio-ffmpeg ships (no system ffmpeg needed). Frames go
through stdin as they are made, so a render holds one frame in memory and encoding runs on
the other core in parallel.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np

from models.base import Audio
from models.errors import BackendFailed


def ffmpeg_binary() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_wav(audio: Audio, path: Path) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(audio.samples, -1, 1), audio.sample_rate, subtype="PCM_16")


class Mp4Writer:
    """``with Mp4Writer(path, size, fps, audio) as w: w.write(frame)`` -> an MP4 at ``path``.

    On an exception inside the block ffmpeg is killed and no partial file is left.
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: int, audio: Audio | None,
                 *, crf: int = 20, preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.size = size
        self.fps = fps
        self.audio = audio
        self.crf = crf
        self.preset = preset
        self.frames = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="studio-mp4-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._partial = self.path.with_name(f".{self.path.stem}.partial.mp4")

    def __enter__(self) -> Mp4Writer:
        w, h = self.size
        cmd = [ffmpeg_binary(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-r", str(self.fps), "-i", "pipe:0"]
        if self.audio is not None:
            wav = Path(self._tmp.name) / "audio.wav"
            write_wav(self.audio, wav)
            cmd += ["-i", str(wav)]
        cmd += ["-map", "0:v:0"]
        if self.audio is not None:
            cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2"]
        cmd += ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
                "-pix_fmt", "yuv420p", "-profile:v", "high", "-movflags", "+faststart",
                "-f", "mp4", str(self._partial)]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        return self

    def write(self, frame: np.ndarray) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        if frame.shape != (self.size[1], self.size[0], 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame must be {self.size[1]}x{self.size[0]}x3 uint8")
        try:
            self._proc.stdin.write(frame.tobytes())
        except BrokenPipeError as exc:
            raise BackendFailed(f"ffmpeg stopped: {self._stderr()}", code="VIDEO_ENCODE_FAILED",
                                message_ja="動画のエンコードに失敗しました。") from exc
        self.frames += 1

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        try:
            return self._proc.stderr.read().decode(errors="replace")[-800:]
        except (OSError, ValueError):
            return ""

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self._proc
        try:
            if proc is None:
                return
            if exc_type is not None:
                proc.kill()
                proc.wait()
                self._partial.unlink(missing_ok=True)
                return
            assert proc.stdin is not None
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            code = proc.wait(timeout=600)
            if code != 0 or not self._partial.exists():
                self._partial.unlink(missing_ok=True)
                raise BackendFailed(f"ffmpeg failed ({code}): {err[-800:]}",
                                    code="VIDEO_ENCODE_FAILED",
                                    message_ja="動画のエンコードに失敗しました。")
            self._partial.replace(self.path)
        finally:
            self._tmp.cleanup()
