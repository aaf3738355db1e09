"""A contact sheet of one message: frames to look at, mouths to compare, a plot to read.

Row by row: 12 frames spread over the message (the 5 % line the forehead must stay below in
red, the forehead and chin the harness found as dots); the six most closed and six most open
mouths inside the speech (closed visemes are where a painted patch or a seam would show);
twelve consecutive mouths from the middle of the speech (syllables: the lips should open and
close, never hold); THEval's lip opening (green) over the 50 ms loudness (grey) for the
whole message, the speech frames the VAD found underlined in blue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from quality.measure import Report, measure

THUMB = 200


def _thumb(frame: np.ndarray, width: int) -> tuple[Image.Image, float]:
    img = Image.fromarray(frame)
    k = width / img.width
    return img.resize((width, max(1, int(round(img.height * k)))), Image.Resampling.LANCZOS), k


def _mouth(frame: np.ndarray, pts: np.ndarray, side: int) -> Image.Image:
    """A square crop around the lips, half a face length wide."""
    centre = (pts[2] + pts[3]) / 2
    half = 0.28 * float(np.linalg.norm(pts[0] - pts[1]))
    x0, y0 = int(centre[0] - half), int(centre[1] - half * 0.8)
    box = (x0, y0, x0 + int(2 * half), y0 + int(2 * half))
    return Image.fromarray(frame).crop(box).resize((side, side), Image.Resampling.LANCZOS)


def contact_sheet(path: str | Path, output: str | Path, report: Report | None = None,
                  title: str | None = None) -> Path:
    """Write the sheet of ``path`` (measured again unless ``report`` still holds its frames)
    as a PNG at ``output``; returns ``output``."""
    if report is None or report.media is None:
        report = measure(path)
    media = report.media
    assert media is not None
    frames, n = media.frames, len(media.frames)
    cols = 6
    h_thumb = int(round(THUMB * frames.shape[1] / frames.shape[2])) if n else THUMB
    label_h, plot_h, mouth = 16, 120, THUMB
    width = cols * THUMB
    strip = THUMB // 2
    height = 24 + 2 * (h_thumb + label_h) + 2 * (mouth + label_h) + 2 * (strip + label_h) \
        + plot_h + 10
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    verdict = ", ".join(report.failed) or "all checks pass"
    draw.text((6, 5), f"{title or Path(report.path).name}: {verdict}", fill=(255, 255, 255))
    y = 24
    picks = np.linspace(0, max(n - 1, 0), 12).astype(int) if n else np.zeros(0, int)
    for k, i in enumerate(picks):
        thumb, scale = _thumb(frames[i], THUMB)
        d = ImageDraw.Draw(thumb)
        d.line([(0, 0.05 * thumb.height), (thumb.width, 0.05 * thumb.height)], fill=(255, 0, 0))
        pts = report.landmarks[i]
        if np.isfinite(pts[0, 0]):
            for p in pts[:2]:
                d.ellipse([p[0] * scale - 3, p[1] * scale - 3, p[0] * scale + 3,
                           p[1] * scale + 3], outline=(0, 255, 255))
        x, yy = (k % cols) * THUMB, y + (k // cols) * (h_thumb + label_h)
        sheet.paste(thumb, (x, yy))
        gap = report.gap[i]
        draw.text((x + 3, yy + h_thumb + 2),
                  f"{i / media.fps:5.2f} s  gap {gap:.3f}" if np.isfinite(gap) else
                  f"{i / media.fps:5.2f} s  no face", fill=(220, 220, 220))
    y += 2 * (h_thumb + label_h)
    said = report.speech if report.speech.size == n else report.active
    speaking = np.nonzero(said & np.isfinite(report.gap))[0]
    if speaking.size:
        order = speaking[np.argsort(report.gap[speaking])]
        rows = [("closed", order[:cols]), ("open", order[::-1][:cols])]
        for r, (name, idx) in enumerate(rows):
            for k, i in enumerate(sorted(idx)):
                crop = _mouth(frames[i], report.landmarks[i], mouth)
                x, yy = k * mouth, y + r * (mouth + label_h)
                sheet.paste(crop, (x, yy))
                draw.text((x + 3, yy + mouth + 2),
                          f"{name} {i / media.fps:5.2f} s gap {report.gap[i]:.3f}",
                          fill=(220, 220, 220))
    y += 2 * (mouth + label_h)
    if speaking.size:  # a run of consecutive frames from the middle of the speech
        middle = int(speaking[len(speaking) // 2])
        run = [i for i in range(middle - 6, middle + 6) if 0 <= i < n
               and np.isfinite(report.gap[i])]
        for k, i in enumerate(run):
            crop = _mouth(frames[i], report.landmarks[i], strip)
            x, yy = (k % 12) * strip, y + (k // 12) * (strip + label_h)
            sheet.paste(crop, (x, yy))
            draw.text((x + 2, yy + strip + 2), f"{i / media.fps:.2f}", fill=(220, 220, 220))
    y += 2 * (strip + label_h)
    if n > 1:
        lips_series = report.openness if report.openness.size == n else report.gap
        sound = report.rms if report.rms.size == n else report.envelope
        env = sound / (sound.max() + 1e-12)
        gap = np.nan_to_num(lips_series, nan=0.0)
        gap = gap / (gap.max() + 1e-12)
        xs = np.linspace(4, width - 4, n)

        def line(values: np.ndarray, colour: tuple[int, int, int]) -> None:
            draw.line([(float(x), y + plot_h - 4 - float(v) * (plot_h - 8))
                       for x, v in zip(xs, values, strict=True)], fill=colour, width=2)
        line(env, (150, 150, 150))
        line(gap, (60, 220, 90))
        for x, inside in zip(xs, said, strict=True):
            if inside:
                draw.line([(float(x), y + plot_h - 2), (float(x) + 2, y + plot_h - 2)],
                          fill=(80, 140, 255), width=3)
        lips, lag, score = report.value("lips"), report.value("lag"), report.value("theval")
        draw.text((6, y + 2), f"lip opening (green) vs 50 ms loudness (grey), speech frames "
                  f"(blue): THEval {'-' if score is None else f'{score:.3f}'}, r "
                  f"{'-' if lips is None else f'{lips:.2f}'}, best offset "
                  f"{'-' if lag is None else f'{lag:+.0f}'} ms", fill=(255, 255, 255))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(output)
    return output
