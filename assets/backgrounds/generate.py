"""Make the built-in framing backgrounds (run once; the JPEGs and manifest are committed).

    python assets/backgrounds/generate.py

Every image is computed here from a fixed seed (gradients, blurred discs, a vignette), so the
project owns them outright: no third-party pictures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).parent
SIZE = 1024


def _gradient(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    t = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    col = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return np.repeat(col, SIZE, axis=1)


def _vignette(img: np.ndarray, strength: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) - 0.5
    r = np.sqrt(xx ** 2 + yy ** 2) / 0.707
    return img * (1 - strength * r[..., None] ** 2)


def _bokeh(base: np.ndarray, seed: int, palette: list[tuple[int, int, int]], count: int,
           blur: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    layer = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    for _ in range(count):
        disc = Image.new("L", (SIZE, SIZE), 0)
        r = int(rng.uniform(20, 110))
        x, y = int(rng.uniform(-50, SIZE + 50)), int(rng.uniform(-50, SIZE + 50))
        ImageDraw.Draw(disc).ellipse([x - r, y - r, x + r, y + r],
                                     fill=int(rng.uniform(60, 170)))
        colour = Image.new("RGB", (SIZE, SIZE), palette[int(rng.integers(len(palette)))])
        layer = Image.composite(colour, layer, disc)
    return np.asarray(layer.filter(ImageFilter.GaussianBlur(blur)), dtype=float)


def _waves(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    field = np.zeros((SIZE, SIZE))
    for _ in range(4):
        fx, fy, ph = rng.uniform(1, 3), rng.uniform(1, 3), rng.uniform(0, 6.28)
        field += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
    field = (field - field.min()) / (field.max() - field.min())
    a = np.array([250, 214, 222], float)
    b = np.array([196, 222, 250], float)
    return a * field[..., None] + b * (1 - field[..., None])


BACKGROUNDS = {
    "warm_gradient": ("Warm gradient", "暖色グラデーション",
                      lambda: _vignette(_gradient((252, 214, 170), (214, 120, 104)), 0.25)),
    "cool_gradient": ("Cool gradient", "寒色グラデーション",
                      lambda: _vignette(_gradient((186, 216, 240), (62, 92, 150)), 0.25)),
    "studio_grey": ("Studio grey", "スタジオグレー",
                    lambda: _vignette(np.full((SIZE, SIZE, 3), 150.0), 0.55)),
    "bokeh_night": ("Night bokeh", "夜のボケ",
                    lambda: _bokeh(_gradient((20, 24, 48), (40, 30, 60)), 1,
                                   [(255, 196, 90), (255, 120, 80), (120, 170, 255)], 70, 14)),
    "bokeh_garden": ("Garden bokeh", "庭のボケ",
                     lambda: _bokeh(_gradient((120, 160, 90), (60, 100, 60)), 2,
                                    [(230, 250, 170), (255, 255, 220), (150, 200, 120)], 60,
                                    18)),
    "pastel_waves": ("Pastel waves", "パステルウェーブ", lambda: _waves(3)),
}


def main() -> None:
    manifest = []
    for key, (en, ja, make) in BACKGROUNDS.items():
        pixels = np.clip(make(), 0, 255).astype(np.uint8)
        file = f"{key}.jpg"
        Image.fromarray(pixels).save(HERE / file, quality=88, optimize=True)
        manifest.append({"id": key, "name": en, "name_ja": ja, "file": file,
                         "width": SIZE, "height": SIZE})
    (HERE / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n",
                                        encoding="utf-8")


if __name__ == "__main__":
    main()
