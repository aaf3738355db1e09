"""Test portraits with a known alpha matte, made here (no downloads).

What this set is, honestly: one real photograph of a person (Grace Hopper, an official US Navy
portrait in the public domain, as shipped in matplotlib's sample data; copied to
``data/grace_hopper.jpg``), cut out along a hand-drawn polygon that runs just inside her
silhouette, with a few hundred synthetic hair strands (0.5-1.6 px wide, drawn at 4x and
averaged down, so they carry real fractional alpha) added around the head. That figure and
its exactly known alpha are composited onto backgrounds: real photos that installed packages
ship (scikit-learn's china/flower, Gradio's tower/cheetah/lion), when present, plus generated
ones (busy stripes, noise, bokeh). The subject's edges are therefore a polygon plus synthetic
hair, not a real hair boundary: good for comparing mattes, not a substitute for real photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DATA = Path(__file__).parent / "data"
PORTRAIT = DATA / "grace_hopper.jpg"

# Hand-drawn, just inside her silhouette (image is 512x600).
SILHOUETTE = [
    (182, 52), (215, 32), (265, 24), (318, 36), (348, 56), (366, 96), (370, 140), (374, 190),
    (368, 240), (352, 288), (334, 318), (332, 334), (380, 352), (440, 372), (488, 392),
    (504, 430), (511, 599), (14, 599), (22, 430), (44, 386), (110, 360), (188, 336),
    (198, 320), (180, 290), (166, 250), (160, 200), (157, 150), (162, 100),
]


@dataclass(frozen=True)
class Composite:
    name: str
    image: Image.Image  # RGB
    alpha: np.ndarray  # float32 HxW, the truth


def _supersampled_alpha(size: tuple[int, int], draw_fn, factor: int = 4) -> np.ndarray:
    big = Image.new("L", (size[0] * factor, size[1] * factor), 0)
    draw_fn(ImageDraw.Draw(big), factor)
    small = big.resize(size, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def figure(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The figure's colours (float HxWx3) and its alpha (float HxW)."""
    rng = np.random.default_rng(seed)
    photo = np.asarray(Image.open(PORTRAIT).convert("RGB"), dtype=np.float32) / 255.0
    h, w = photo.shape[:2]

    def body(draw: ImageDraw.ImageDraw, f: int) -> None:
        draw.polygon([(x * f, y * f) for x, y in SILHOUETTE], fill=255)

    body_a = _supersampled_alpha((w, h), body)
    head = [p for p in SILHOUETTE if p[1] < 300 and 150 < p[0] < 380]
    strands = []
    for _ in range(260):
        i = rng.integers(0, len(head) - 1)
        t = rng.random()
        x = head[i][0] * (1 - t) + head[i + 1][0] * t
        y = head[i][1] * (1 - t) + head[i + 1][1] * t
        cx, cy = 265.0, 170.0
        base = math.atan2(y - cy, x - cx) + rng.normal(0, 0.5)
        length = rng.uniform(8, 34)
        bend = rng.normal(0, 0.04)
        pts = []
        for s in np.linspace(0, 1, 8):
            ang = base + bend * s * length
            pts.append((x + math.cos(ang) * length * s - math.cos(base) * 4,
                        y + math.sin(ang) * length * s - math.sin(base) * 4))
        strands.append((pts, rng.uniform(0.5, 1.6)))

    def hair(draw: ImageDraw.ImageDraw, f: int) -> None:
        for pts, width in strands:
            draw.line([(px * f, py * f) for px, py in pts], fill=255,
                      width=max(int(round(width * f)), 1))

    hair_a = _supersampled_alpha((w, h), hair)
    hair_colour = np.array([0.78, 0.76, 0.74], dtype=np.float32)
    colour = photo * (1 - hair_a[..., None]) + hair_colour * hair_a[..., None]
    alpha = body_a + hair_a * (1 - body_a)
    return colour.astype(np.float32), alpha.astype(np.float32)


def _site_image(*parts: str) -> Image.Image | None:
    import importlib.util

    spec = importlib.util.find_spec(parts[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts[1:])
    return Image.open(path).convert("RGB") if path.is_file() else None


def generated_backgrounds(size: tuple[int, int], seed: int = 0) -> dict[str, Image.Image]:
    """Busy backgrounds made here: stripes, coloured noise, bokeh discs."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin((xx * 0.9 + yy * 0.4) / 6.0)
    stripes_rgb = np.stack([stripes, 0.6 * stripes + 0.2, 1 - stripes], -1)
    noise = np.asarray(Image.fromarray((rng.random((h // 8, w // 8, 3)) * 255).astype(np.uint8))
                       .resize(size, Image.Resampling.BICUBIC), dtype=np.float32) / 255
    bokeh = Image.new("RGB", size, (30, 40, 60))
    draw = ImageDraw.Draw(bokeh)
    for _ in range(60):
        r = int(rng.uniform(10, 60))
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        c = tuple(int(v) for v in rng.uniform(80, 255, 3))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
    bokeh = bokeh.filter(ImageFilter.GaussianBlur(6))
    return {
        "stripes": Image.fromarray((stripes_rgb * 255).astype(np.uint8)),
        "noise": Image.fromarray((noise * 255).astype(np.uint8)),
        "bokeh": bokeh,
    }


def photo_backgrounds() -> dict[str, Image.Image]:
    """Real photos that installed packages ship (absent ones are skipped)."""
    found = {}
    for name, parts in {
        "china": ("sklearn", "datasets", "images", "china.jpg"),
        "flower": ("sklearn", "datasets", "images", "flower.jpg"),
        "tower": ("gradio", "media_assets", "images", "tower.jpg"),
        "cheetah": ("gradio", "media_assets", "images", "cheetah.jpg"),
        "lion": ("gradio", "media_assets", "images", "lion.jpg"),
    }.items():
        try:
            img = _site_image(*parts)
        except OSError:
            img = None
        if img is not None:
            found[name] = img
    return found


def _fit(bg: Image.Image, size: tuple[int, int]) -> np.ndarray:
    from PIL import ImageOps

    fitted = ImageOps.fit(bg, size, Image.Resampling.LANCZOS)
    return np.asarray(fitted, dtype=np.float32) / 255.0


def composite(colour: np.ndarray, alpha: np.ndarray, background: Image.Image,
              name: str, flip: bool = False) -> Composite:
    h, w = alpha.shape
    bg = _fit(background, (w, h))
    if flip:
        colour, alpha = colour[:, ::-1], alpha[:, ::-1]
    a = alpha[..., None]
    rgb = colour * a + bg * (1 - a)
    image = Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))
    return Composite(name, image, np.ascontiguousarray(alpha, dtype=np.float32))


def evaluation_set(include_photos: bool = True) -> list[Composite]:
    """The figure on every background, alternately mirrored."""
    colour, alpha = figure()
    h, w = alpha.shape
    backgrounds = dict(generated_backgrounds((w, h)))
    if include_photos:
        backgrounds.update(photo_backgrounds())
    return [composite(colour, alpha, bg, name, flip=bool(i % 2))
            for i, (name, bg) in enumerate(sorted(backgrounds.items()))]


def single_portrait(background: str = "bokeh") -> Composite:
    colour, alpha = figure()
    h, w = alpha.shape
    return composite(colour, alpha, generated_backgrounds((w, h))[background], background)


def group_photo() -> Image.Image:
    """Two people side by side (the figure at two sizes, one mirrored) on generated bokeh."""
    colour, alpha = figure()
    h, w = alpha.shape
    canvas_w, canvas_h = 1100, 640
    bg = np.asarray(generated_backgrounds((canvas_w, canvas_h), seed=3)["bokeh"],
                    dtype=np.float32) / 255
    out = bg.copy()
    for scale, x0, flip in ((1.0, 30, False), (0.8, 620, True)):
        sw, sh = int(w * scale), int(h * scale)
        c = np.asarray(Image.fromarray((colour * 255).astype(np.uint8)).resize((sw, sh)),
                       dtype=np.float32) / 255
        a = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).resize((sw, sh)),
                       dtype=np.float32)[..., None] / 255
        if flip:
            c, a = c[:, ::-1], a[:, ::-1]
        y0 = canvas_h - sh
        region = out[y0:y0 + sh, x0:x0 + sw]
        out[y0:y0 + sh, x0:x0 + sw] = c * a + region * (1 - a)
    return Image.fromarray(np.clip(out * 255, 0, 255).astype(np.uint8))


def no_person_image(size: tuple[int, int] = (640, 480)) -> Image.Image:
    return generated_backgrounds(size, seed=7)["bokeh"]


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0.5, truth > 0.5
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else 1.0


def mean_abs_error(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - truth.astype(np.float64)).mean())
