"""Subtitles: the message text timed to the speech, written as SRT/VTT and burned in.

Timing comes from the speech engine when it knows its sentences (``Speech.sentences``);
otherwise sentences are laid over the voiced stretches of the audio in proportion to their
length, with boundaries snapped to the nearest pause. Burn-in draws each cue once with
Pillow (Noto Sans CJK, which covers Japanese) and blends it onto the decoded frames, so it
works on any engine's MP4 (the built-in renderer's, Wav2Lip's or D-ID's).
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.base import Speech, Timing
from models.errors import BackendFailed
from pipelines.media import ffmpeg_exe

_SENTENCE_END = re.compile(r"(?<=[。！？!?．])|(?<=[.](?=\s))|\n+")
FONT_CANDIDATES = (
    "noto_cjk_sans_jp_regular/NotoSansCJKjp-Regular.otf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
)


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def _width(text: str) -> int:
    """Display width: full-width characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap(text: str, max_width: int = 40) -> list[str]:
    """Break a cue into lines of at most ``max_width`` columns (spaces or any character for
    Japanese, preferring after punctuation)."""
    lines: list[str] = []
    current = ""
    for token in re.findall(r"\S+\s*|\s+", text) if " " in text else list(text):
        if current and _width(current + token.rstrip()) > max_width:
            cut = max((current.rfind(c) for c in "、，,"), default=-1)
            if " " not in text and cut >= len(current) // 2:
                lines.append(current[:cut + 1].strip())
                current = current[cut + 1:]
            else:
                lines.append(current.strip())
                current = ""
        current += token
    if current.strip():
        lines.append(current.strip())
    return lines


def voiced_spans(speech: Speech, min_pause: float = 0.22) -> list[tuple[float, float]]:
    """Stretches of speech separated by pauses of at least ``min_pause`` seconds."""
    audio = speech.audio
    hop = max(1, audio.sample_rate // 100)
    x = audio.samples[: len(audio.samples) // hop * hop].reshape(-1, hop)
    if len(x) == 0:
        return [(0.0, audio.duration)]
    db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2, axis=1) + 1e-12)
    voiced = db > max(np.percentile(db, 95) - 35.0, -70.0)
    spans: list[tuple[float, float]] = []
    start = None
    silence = 0
    gap = int(min_pause * 100)
    for i, v in enumerate(voiced):
        if v:
            if start is None:
                start = i
            silence = 0
        elif start is not None:
            silence += 1
            if silence >= gap:
                spans.append((start / 100, (i - silence + 1) / 100))
                start, silence = None, 0
    if start is not None:
        spans.append((start / 100, (len(voiced) - silence) / 100))
    return spans or [(0.0, audio.duration)]


def cues_for(text: str, speech: Speech) -> list[Timing]:
    """Timed subtitle cues for ``text`` spoken in ``speech``."""
    if speech.sentences:
        return [Timing(s.start, s.end, s.text.strip()) for s in speech.sentences if s.text.strip()]
    sentences = split_sentences(text)
    if not sentences:
        return []
    spans = voiced_spans(speech)
    start, end = spans[0][0], spans[-1][1]
    pauses = [(a[1] + b[0]) / 2 for a, b in zip(spans, spans[1:], strict=False)]
    weights = np.array([max(1, _width(s)) for s in sentences], dtype=np.float64)
    # Voiced time, not wall time, is what the characters fill.
    bounds = np.cumsum(weights) / weights.sum()
    voiced_total = sum(b - a for a, b in spans)
    cues = []
    t0 = start
    for i, sentence in enumerate(sentences):
        if i == len(sentences) - 1:
            t1 = end
        else:
            target = bounds[i] * voiced_total
            acc = 0.0
            t1 = end
            for a, b in spans:
                if acc + (b - a) >= target:
                    t1 = a + (target - acc)
                    break
                acc += b - a
            if pauses:
                nearest = min(pauses, key=lambda p: abs(p - t1))
                if abs(nearest - t1) < 1.2 and nearest > t0 + 0.3:
                    t1 = nearest
        cues.append(Timing(round(t0, 3), round(max(t1, t0 + 0.3), 3), sentence))
        t0 = t1
    return cues


def _stamp(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Timing]) -> str:
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n" + "\n".join(wrap(c.text))
              for i, c in enumerate(cues, 1)]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def to_vtt(cues: list[Timing]) -> str:
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n" + "\n".join(wrap(c.text))
              for c in cues]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + ("\n" if blocks else "")


@lru_cache(maxsize=1)
def font_path() -> str:
    import importlib.util

    for candidate in FONT_CANDIDATES:
        if candidate.startswith("/"):
            if Path(candidate).is_file():
                return candidate
            continue
        package, _, rel = candidate.partition("/")
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / rel
            if path.is_file():
                return str(path)
    raise BackendFailed("No font with Japanese glyphs is installed (Noto Sans CJK).",
                        code="VIDEO_FONT_MISSING",
                        message_ja="日本語フォント（Noto Sans CJK）が見つかりません。")


def caption_image(text: str, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """An RGBA caption (white text, dark outline, translucent band) and where it goes."""
    from PIL import Image, ImageDraw, ImageFont

    size = max(14, int(min(width, height) * 0.045 if width >= height else width * 0.05))
    font = ImageFont.truetype(font_path(), size)
    columns = max(12, int(width * 0.86 / (size * 0.55)))
    lines = wrap(text, columns)[:3]
    stroke = max(1, size // 12)
    draw = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    boxes = [draw.textbbox((0, 0), line, font=font, stroke_width=stroke) for line in lines]
    line_h = int(size * 1.35)
    text_w = max(b[2] - b[0] for b in boxes)
    pad = size // 2
    img_w, img_h = int(min(width, text_w + 2 * pad)), line_h * len(lines) + pad
    img = Image.new("RGBA", (img_w, img_h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, img_w - 1, img_h - 1), radius=pad // 2, fill=(0, 0, 0, 110))
    for i, (line, box) in enumerate(zip(lines, boxes, strict=True)):
        x = (img_w - (box[2] - box[0])) // 2 - box[0]
        d.text((x, pad // 2 + i * line_h), line, font=font, fill=(255, 255, 255, 255),
               stroke_width=stroke, stroke_fill=(20, 20, 20, 255))
    x0 = (width - img_w) // 2
    y0 = height - img_h - int(height * 0.05)
    return np.asarray(img), x0, y0


def _probe_size(path: Path) -> tuple[int, int, float]:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    m = re.search(r"Video: .*?, (\d{2,5})x(\d{2,5})", proc.stderr)
    fps = re.search(r"([\d.]+) fps", proc.stderr)
    if not m:
        raise BackendFailed("The rendered video cannot be read.", code="VIDEO_ENCODE_FAILED",
                            message_ja="動画を読み込めません。")
    return int(m.group(1)), int(m.group(2)), float(fps.group(1)) if fps else 25.0


def burn_in(source: Path, target: Path, cues: list[Timing]) -> Path:
    """Re-encode ``source`` with the cues drawn on its frames (audio copied untouched)."""
    w, h, fps = _probe_size(source)
    images = [(c, *caption_image(c.text, w, h)) for c in cues]
    decode = subprocess.Popen([ffmpeg_exe(), "-v", "error", "-i", str(source), "-f", "rawvideo",
                               "-pix_fmt", "rgb24", "pipe:1"], stdout=subprocess.PIPE)
    partial = target.with_name(f".{target.stem}.partial.mp4")
    encode = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
         f"{w}x{h}", "-r", f"{fps:g}", "-i", "pipe:0", "-i", str(source), "-map", "0:v:0",
         "-map", "1:a:0?", "-c:a", "copy", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
         "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(partial)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert decode.stdout is not None
    assert encode.stdin is not None
    frame_bytes = w * h * 3
    index = 0
    try:
        while True:
            raw = decode.stdout.read(frame_bytes)
            if len(raw) < frame_bytes:
                break
            t = index / fps
            active = [item for item in images if item[0].start <= t < item[0].end]
            if active:
                frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()
                for _, rgba, x0, y0 in active:
                    ch, cw = rgba.shape[:2]
                    a = rgba[..., 3:4].astype(np.float32) / 255.0
                    region = frame[y0:y0 + ch, x0:x0 + cw].astype(np.float32)
                    frame[y0:y0 + ch, x0:x0 + cw] = (region * (1 - a) + rgba[..., :3] * a).astype(
                        np.uint8)
                raw = frame.tobytes()
            encode.stdin.write(raw)
            index += 1
    except BaseException:
        encode.kill()
        decode.kill()
        partial.unlink(missing_ok=True)
        raise
    finally:
        decode.wait()
    encode.stdin.close()
    err = encode.stderr.read().decode(errors="replace") if encode.stderr else ""
    if encode.wait() != 0 or index == 0:
        partial.unlink(missing_ok=True)
        raise BackendFailed(f"Burning in subtitles failed: {err[-500:]}",
                            code="VIDEO_ENCODE_FAILED",
                            message_ja="字幕の焼き込みに失敗しました。")
    partial.replace(target)
    return target
