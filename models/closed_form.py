"""Closed-form matting (Levin, Lischinski & Weiss 2008) on a trimap made from a coarse mask,
plus fast foreground colour estimation (Forte & Pitié 2021, "blur fusion").

Why our own solver instead of ``pymatting.estimate_alpha_cf``: pymatting compiles ~40 numba
kernels eagerly when it is imported (80 s on a fresh 2-core machine, every fresh venv or
cache dir), and it solves for every pixel of the image. Here the matting Laplacian is built
with vectorised numpy only for the 3x3 windows that touch the unknown band, and the sparse
system is solved for the unknown pixels alone (the known ones are hard constraints), which
is the same energy with lambda -> infinity. ``bench/image.py`` checks it against pymatting.

Foreground estimation removes the background colour that a soft alpha alone would keep in
hair and at the edges (the "halo"): the cutout's RGB is the estimated foreground F, not I.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import EngineSettings
from models.errors import BackendFailed

WORK_MAX_SIDE = 1024  # solve on at most this many pixels along the long side of the crop
EPSILON = 1e-6


def _cv2() -> Any:
    import cv2

    return cv2


def _disk(radius: int) -> np.ndarray:
    size = 2 * max(int(radius), 1) + 1
    return _cv2().getStructuringElement(_cv2().MORPH_ELLIPSE, (size, size))


def make_trimap(matte: np.ndarray, band: int) -> np.ndarray:
    """Trimap from a soft mask: 1 sure foreground, 0 sure background, 0.5 unknown.

    The unknown band is ``band`` pixels either side of the 0.5 contour, widened wherever the
    mask itself is unsure (0.1 < m < 0.9), so hair the coarse model blurred gets solved too.
    """
    cv2 = _cv2()
    fg = (matte > 0.5).astype(np.uint8)
    kernel = _disk(band)
    sure_fg = cv2.erode(fg, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    sure_bg = cv2.erode(1 - fg, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    unsure = (matte > 0.1) & (matte < 0.9)
    sure_fg &= ~unsure
    sure_bg &= ~unsure
    trimap = np.full(matte.shape, 0.5, dtype=np.float32)
    trimap[sure_fg] = 1.0
    trimap[sure_bg] = 0.0
    return trimap


def closed_form_alpha(image: np.ndarray, trimap: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """Solve the closed-form matting energy for the unknown pixels of ``trimap``.

    ``image`` is float HxWx3 in [0, 1]; returns float32 alpha HxW in [0, 1].
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    h, w = trimap.shape
    known = trimap != 0.5
    unknown = ~known
    alpha = np.where(trimap > 0.5, 1.0, 0.0)
    if not unknown.any() or h < 3 or w < 3:
        return alpha.astype(np.float32)
    if known.sum() == 0 or not (trimap == 1.0).any():
        return np.zeros_like(trimap, dtype=np.float32)

    cv2 = _cv2()
    touch = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    touch[0, :] = touch[-1, :] = False
    touch[:, 0] = touch[:, -1] = False
    cy, cx = np.nonzero(touch)
    dy, dx = np.meshgrid(np.arange(-1, 2), np.arange(-1, 2), indexing="ij")
    idx = (cy[:, None] + dy.ravel()[None]) * w + (cx[:, None] + dx.ravel()[None])  # (n, 9)
    flat = image.reshape(-1, 3).astype(np.float64)
    win = flat[idx]  # (n, 9, 3)
    mu = win.mean(axis=1, keepdims=True)
    d = win - mu
    cov = np.einsum("nki,nkj->nij", d, d) / 9.0 + (eps / 9.0) * np.eye(3)[None]
    inv = np.linalg.inv(cov)
    vals = (1.0 + np.einsum("nki,nij,nlj->nkl", d, inv, d)) / 9.0  # (n, 9, 9)
    vals = np.eye(9)[None] - vals
    rows = np.repeat(idx[:, :, None], 9, axis=2).ravel()
    cols = np.repeat(idx[:, None, :], 9, axis=1).ravel()
    lap = sparse.csr_matrix((vals.ravel(), (rows, cols)), shape=(h * w, h * w))

    u_idx = np.flatnonzero(unknown.ravel())
    k_idx = np.flatnonzero(known.ravel())
    lap_u = lap[u_idx]
    a_uu = lap_u[:, u_idx].tocsc()
    b = -(lap_u[:, k_idx] @ alpha.ravel()[k_idx])
    # Unknown pixels no window reaches (isolated, at the border) get a tiny diagonal term
    # toward 0.5 so the system stays non-singular.
    a_uu = a_uu + sparse.identity(len(u_idx), format="csc") * 1e-9
    b = b + 0.5e-9
    try:
        solution = spsolve(a_uu, b)
    except (RuntimeError, ValueError) as exc:  # singular, out of memory in SuperLU
        raise BackendFailed(f"closed-form matting failed: {exc}", code="IMAGE_MATTING_FAILED",
                            message_ja="マット推定に失敗しました。") from exc
    if not np.all(np.isfinite(solution)):
        raise BackendFailed("closed-form matting diverged", code="IMAGE_MATTING_FAILED",
                            message_ja="マット推定が収束しませんでした。")
    out = alpha.ravel().copy()
    out[u_idx] = solution
    return np.clip(out, 0.0, 1.0).reshape(h, w).astype(np.float32)


def band_width(matte: np.ndarray, fraction: float = 0.015) -> int:
    """Unknown-band half width: a fraction of the person's size (sqrt of its area)."""
    area = float((matte > 0.5).sum())
    return int(min(max(round(fraction * np.sqrt(max(area, 1.0))), 3), 60))


def refine_matte(image: np.ndarray, matte: np.ndarray, *, band: int | None = None,
                 max_side: int = WORK_MAX_SIDE) -> np.ndarray:
    """Refine a coarse matte with closed-form matting on its trimap.

    Works on the crop around the band, downscaled to ``max_side`` if larger, then pastes the
    solved band back at full resolution; sure regions keep their hard 0/1.
    """
    cv2 = _cv2()
    h, w = matte.shape
    band = band if band is not None else band_width(matte)
    trimap = make_trimap(matte, band)
    unknown = trimap == 0.5
    if not unknown.any():
        return trimap.astype(np.float32)
    ys, xs = np.nonzero(unknown)
    pad = band + 4
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)
    crop_img = image[y0:y1, x0:x1]
    crop_matte = matte[y0:y1, x0:x1]
    ch, cw = crop_matte.shape
    scale = min(1.0, max_side / max(ch, cw))
    if scale < 1.0:
        size = (max(int(round(cw * scale)), 3), max(int(round(ch * scale)), 3))
        small_img = cv2.resize(crop_img, size, interpolation=cv2.INTER_AREA)
        small_matte = cv2.resize(crop_matte, size, interpolation=cv2.INTER_LINEAR)
        small_trimap = make_trimap(small_matte, max(int(round(band * scale)), 2))
        small_alpha = closed_form_alpha(small_img, small_trimap)
        alpha_crop = cv2.resize(small_alpha, (cw, ch), interpolation=cv2.INTER_LINEAR)
    else:
        alpha_crop = closed_form_alpha(crop_img, trimap[y0:y1, x0:x1])
    out = trimap.copy()
    band_crop = unknown[y0:y1, x0:x1]
    region = out[y0:y1, x0:x1]
    region[band_crop] = alpha_crop[band_crop]
    # Specks: alpha the solver leaves below 2% or above 98% is snapped to clean 0/1.
    out[out < 0.02] = 0.0
    out[out > 0.98] = 1.0
    return out.astype(np.float32)


def _blur_fusion(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
                 radius: int) -> tuple[np.ndarray, np.ndarray]:
    cv2 = _cv2()
    a = alpha[..., None]
    k = (radius, radius)
    blurred_a = cv2.blur(alpha, k)[..., None]
    blurred_f = cv2.blur(fg * a, k) / (blurred_a + 1e-5)
    blurred_b = cv2.blur(bg * (1 - a), k) / ((1 - blurred_a) + 1e-5)
    fg = blurred_f + a * (image - a * blurred_f - (1 - a) * blurred_b)
    return np.clip(fg, 0.0, 1.0), blurred_b


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours F with I = aF + (1-a)B (two-pass blur fusion, radii 90 and 6).

    ``image`` float32 HxWx3 in [0, 1]; returns float32 HxWx3. Pixels with alpha 1 keep I.
    """
    img = image.astype(np.float32)
    a = alpha.astype(np.float32)
    fg, bg = _blur_fusion(img, img, img, a, 90)
    fg, _ = _blur_fusion(img, fg, bg, a, 6)
    solid = a >= 0.999
    fg[solid] = img[solid]
    return fg.astype(np.float32)


def as_float_rgb(image: Any) -> np.ndarray:
    """PIL image or uint8 array -> float64 HxWx3 in [0, 1]."""
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if arr.dtype == np.uint8:
        return arr[..., :3].astype(np.float64) / 255.0
    return np.clip(arr[..., :3].astype(np.float64), 0.0, 1.0)


class ClosedFormRefiner:
    """Matte refiner that needs no model: closed-form matting on a trimap from the mask."""

    name = "closed_form"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    def available(self) -> tuple[bool, str]:
        return True, "built in (numpy + scipy)"

    def refine(self, image: Any, matte: np.ndarray,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        rgb = as_float_rgb(image)
        if rgb.shape[:2] != matte.shape:
            raise ValueError(f"image {rgb.shape[:2]} and matte {matte.shape} differ in size")
        return refine_matte(rgb, matte.astype(np.float32))

    def close(self) -> None:
        pass
