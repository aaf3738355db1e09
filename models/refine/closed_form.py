"""Closed-form matting (Levin, Lischinski & Weiss 2008) on a trimap made from a coarse mask,
plus fast foreground colour estimation (Forte & Pitié 2021, "blur fusion").

Why our own solver instead of ``pymatting.estimate_alpha_cf``: pymatting compiles ~40 numba
kernels eagerly when it is imported (80 s on a fresh 2-core machine, every fresh venv or
cache dir), and it solves for every pixel of the image. Here the matting Laplacian is built
with vectorised numpy only for the 3x3 windows that touch the unknown band, and the sparse
system is solved for the unknown pixels alone (the known ones are hard constraints), which
is the same energy with lambda -> infinity. ``bench/image.py`` checks it against pymatting.

Why the solve runs on a smaller grid: the sparse factorisation is the cost, and it grows
faster than the number of unknowns. The band is solved where it is ``SOLVE_BAND`` pixels
wide and brought back to the photo's resolution by guided upsampling, which re-applies the
same local colour-line model to the full-resolution pixels. Measured on the evaluation set
against the full-resolution solve: mean IoU 0.9631 -> 0.9637, mean |alpha error| 0.0207 ->
0.0205, refinement CPU 4x lower at 0.3 MP and 14x at 1 MP (``bench/image.py``).

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
    kernel: np.ndarray = _cv2().getStructuringElement(_cv2().MORPH_ELLIPSE, (size, size))
    return kernel


def make_trimap(matte: np.ndarray, band: int) -> np.ndarray:
    """Trimap from a soft mask: 1 sure foreground, 0 sure background, 0.5 unknown.

    The unknown band is ``band`` pixels either side of the 0.5 contour, widened wherever the
    mask itself is unsure (0.1 < m < 0.9), so hair the coarse model blurred gets solved too.
    "Within ``band`` of the other side" comes from an exact Euclidean distance transform,
    whose cost does not grow with the band (an erosion by a 43 px disk took 0.3 s at 4 MP).
    """
    fg = (matte > 0.5).astype(np.uint8)
    sure_fg = _distance(fg) > band
    sure_bg = _distance(1 - fg) > band
    unsure = (matte > 0.1) & (matte < 0.9)
    sure_fg &= ~unsure
    sure_bg &= ~unsure
    trimap = np.full(matte.shape, 0.5, dtype=np.float32)
    trimap[sure_fg] = 1.0
    trimap[sure_bg] = 0.0
    return trimap


def _distance(mask: np.ndarray) -> np.ndarray:
    """Distance of each set pixel to the nearest unset one; the image edge does not count
    as unset (a person cut by the frame stays sure up to the edge)."""
    cv2 = _cv2()
    if mask.all():
        return np.full(mask.shape, np.inf, np.float32)
    # The 5x5 chamfer mask is within ~2 % of the exact distance and 3x faster at 4 MP.
    distance: np.ndarray = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_5)
    return distance


def _inv3(m: np.ndarray) -> np.ndarray:
    """Inverses of a stack of 3x3 matrices by cofactors (far faster than a batched LAPACK
    call on tiny matrices; the covariances here are symmetric positive definite)."""
    a, b, c = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    d, e, f = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    g, h, i = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    co = np.empty_like(m)
    co[..., 0, 0] = e * i - f * h
    co[..., 0, 1] = c * h - b * i
    co[..., 0, 2] = b * f - c * e
    co[..., 1, 0] = f * g - d * i
    co[..., 1, 1] = a * i - c * g
    co[..., 1, 2] = c * d - a * f
    co[..., 2, 0] = d * h - e * g
    co[..., 2, 1] = b * g - a * h
    co[..., 2, 2] = a * e - b * d
    det = a * co[..., 0, 0] + b * co[..., 1, 0] + c * co[..., 2, 0]
    inverse: np.ndarray = co / det[..., None, None]
    return inverse


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
    cov = np.matmul(d.transpose(0, 2, 1), d) / 9.0 + (eps / 9.0) * np.eye(3)[None]
    inv = _inv3(cov)
    vals = (1.0 + np.matmul(np.matmul(d, inv), d.transpose(0, 2, 1))) / 9.0  # (n, 9, 9)
    vals = np.eye(9)[None] - vals

    # Only the rows of unknown pixels matter; their known columns move to the right side.
    u_idx = np.flatnonzero(unknown.ravel())
    pos = np.full(h * w, -1, np.int64)
    pos[u_idx] = np.arange(len(u_idx))
    row = np.broadcast_to(pos[idx][:, :, None], vals.shape)
    col_px = np.broadcast_to(idx[:, None, :], vals.shape)
    col = pos[col_px]
    in_a = (row >= 0) & (col >= 0)
    to_b = (row >= 0) & (col < 0)
    n_u = len(u_idx)
    a_uu = sparse.csc_matrix((vals[in_a], (row[in_a], col[in_a])), shape=(n_u, n_u))
    b: np.ndarray = -np.bincount(row[to_b], weights=vals[to_b] * alpha.ravel()[col_px[to_b]],
                                 minlength=n_u)
    # Unknown pixels no window reaches (isolated, at the border) get a tiny diagonal term
    # toward 0.5 so the system stays non-singular.
    a_uu = a_uu + sparse.identity(n_u, format="csc") * 1e-9
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


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    cv2 = _cv2()
    mean: np.ndarray = cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), normalize=True,
                                     borderType=cv2.BORDER_REFLECT)
    return mean


GUIDE_RADIUS = 1  # window 3x3 at the solve's resolution
GUIDE_EPS = 1e-5  # measured on the evaluation set: 1e-3 blurs strands, 1e-5 keeps them


def guided_upsample(small_img: np.ndarray, small_alpha: np.ndarray, big_img: np.ndarray,
                    radius: int | None = None, eps: float | None = None) -> np.ndarray:
    """Bring a matte solved at low resolution up to the photo's, guided by the photo.

    The fast guided filter (He & Sun 2015): fit alpha ~ a.I + b (the colour line model the
    closed-form solution obeys) in small windows at low resolution, upsample the smooth
    coefficients a, b, and apply them to the full-resolution colours, so edges and strands
    follow the photo's own pixels rather than a blurred bilinear alpha.
    """
    cv2 = _cv2()
    radius = GUIDE_RADIUS if radius is None else radius
    eps = GUIDE_EPS if eps is None else eps
    img = small_img.astype(np.float32)
    p = small_alpha.astype(np.float32)
    mean_i = _box(img, radius)
    mean_p = _box(p, radius)
    cov_ip = _box(img * p[..., None], radius) - mean_i * mean_p[..., None]
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    var = {ij: _box(img[..., ij[0]] * img[..., ij[1]], radius) - mean_i[..., ij[0]] * mean_i[..., ij[1]]
           for ij in pairs}
    sigma = np.empty((*p.shape, 3, 3), np.float32)
    for i, j in pairs:
        sigma[..., i, j] = sigma[..., j, i] = var[(i, j)] + (eps if i == j else 0.0)
    a = np.matmul(_inv3(sigma), cov_ip[..., None])[..., 0]
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    mean_a = _box(a, radius)
    mean_b = _box(b, radius)
    h, w = big_img.shape[:2]
    up_a = cv2.resize(mean_a, (w, h), interpolation=cv2.INTER_LINEAR)
    up_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
    out: np.ndarray = np.einsum("hwc,hwc->hw", up_a, big_img.astype(np.float32, copy=False))
    out += up_b
    np.clip(out, 0.0, 1.0, out=out)
    return out


SNAP = 0.04
"""Alpha the solver leaves below this (or above 1 - this) is snapped to clean 0 / 1: faint
leaks of the low-resolution solve into the background are what a halo is made of."""
SOLVE_BAND = 3
"""Half width of the unknown band, in pixels, at the resolution the solve runs at. The band
of a 1 MP portrait is ~11 px; solving it at 3 px (a 0.27x grid) has ~13x fewer unknowns, and
the sparse solve costs more than linearly in them. Guided upsampling restores the detail
(``bench/image.py`` scores both against the full-resolution solve)."""


def refine_matte(image: np.ndarray, matte: np.ndarray, *, band: int | None = None,
                 max_side: int = WORK_MAX_SIDE, solve_band: int = SOLVE_BAND) -> np.ndarray:
    """Refine a coarse matte with closed-form matting on its trimap.

    Works on the crop around the band. The solve runs at a scale where the band is
    ``solve_band`` pixels wide (and the crop at most ``max_side``); the solved alpha comes
    back to full resolution by :func:`guided_upsample` and is pasted into the band only;
    sure regions keep their hard 0/1.
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
    scale = min(1.0, max_side / max(ch, cw), max(solve_band, 2) / band)
    if scale < 0.95:
        size = (max(int(round(cw * scale)), 3), max(int(round(ch * scale)), 3))
        small_img = cv2.resize(crop_img.astype(np.float32, copy=False), size,
                               interpolation=cv2.INTER_AREA)
        small_matte = cv2.resize(crop_matte, size, interpolation=cv2.INTER_LINEAR)
        small_trimap = make_trimap(small_matte, max(int(round(band * scale)), 2))
        small_alpha = closed_form_alpha(small_img, small_trimap)
        alpha_crop = guided_upsample(small_img, small_alpha, crop_img)
    else:
        alpha_crop = closed_form_alpha(crop_img, trimap[y0:y1, x0:x1])
    out = trimap.copy()
    band_crop = unknown[y0:y1, x0:x1]
    region = out[y0:y1, x0:x1]
    region[band_crop] = alpha_crop[band_crop]
    out[out < SNAP] = 0.0
    out[out > 1.0 - SNAP] = 1.0
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


def as_float_rgb(image: Any, dtype: Any = np.float64) -> np.ndarray:
    """PIL image or uint8 array -> float HxWx3 in [0, 1] (float64 unless ``dtype`` says)."""
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if arr.dtype == np.uint8:
        out = arr[..., :3].astype(dtype)
        out *= 1.0 / 255.0
        return out
    clipped: np.ndarray = np.clip(arr[..., :3].astype(dtype), 0.0, 1.0)
    return clipped


class ClosedFormRefiner:
    """Matte refiner that needs no model: closed-form matting on a trimap from the mask."""

    name = "closed_form"
    prompted = False  # only solves the coarse matte's edges

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    def available(self) -> tuple[bool, str]:
        return True, "built in (numpy + scipy)"

    def refine(self, image: Any, matte: np.ndarray,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        rgb = as_float_rgb(image, np.float32)  # float64 would only double the memory traffic
        if rgb.shape[:2] != matte.shape:
            raise ValueError(f"image {rgb.shape[:2]} and matte {matte.shape} differ in size")
        return refine_matte(rgb, matte.astype(np.float32))

    def close(self) -> None:
        pass
