"""Closed-form matting and foreground estimation on images whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from models.refine.closed_form import (
    ClosedFormRefiner,
    closed_form_alpha,
    estimate_foreground,
    guided_upsample,
    make_trimap,
    refine_matte,
)
from tests.fixtures import portraits


def _two_colour_blend(h: int = 40, w: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """A red-over-blue blend with a soft horizontal ramp: the colour line model holds."""
    alpha = np.clip((np.arange(w) - 20) / 20.0, 0, 1)[None, :].repeat(h, 0)
    fg = np.array([0.9, 0.1, 0.1])
    bg = np.array([0.1, 0.2, 0.8])
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return image, alpha


def test_closed_form_recovers_a_linear_blend() -> None:
    image, alpha = _two_colour_blend()
    trimap = np.full(alpha.shape, 0.5)
    trimap[:, :15] = 0.0
    trimap[:, 45:] = 1.0
    solved = closed_form_alpha(image, trimap)
    assert np.abs(solved - alpha).mean() < 0.01
    assert solved[:, :15].max() == 0.0
    assert solved[:, 45:].min() == 1.0


def test_trimap_has_band_around_the_edge() -> None:
    matte = np.zeros((50, 50), np.float32)
    matte[10:40, 10:40] = 1.0
    trimap = make_trimap(matte, 3)
    assert trimap[25, 25] == 1.0
    assert trimap[0, 0] == 0.0
    assert trimap[25, 10] == 0.5
    assert trimap[25, 8] == 0.5
    assert trimap[25, 20] == 1.0


def test_trimap_keeps_a_person_cut_by_the_frame_sure_up_to_the_edge() -> None:
    matte = np.zeros((60, 60), np.float32)
    matte[20:, 10:50] = 1.0  # shoulders run off the bottom of the photo
    trimap = make_trimap(matte, 5)
    assert trimap[59, 30] == 1.0 and trimap[30, 30] == 1.0
    assert trimap[59, 12] == 0.5  # the side edge is still unknown
    assert trimap[5, 5] == 0.0


def test_guided_upsampling_puts_the_edge_where_the_photo_has_it() -> None:
    """A matte solved on a 4x smaller grid is blurry across 4 px; guided by the full photo
    the upsampled edge is as sharp as the photo's and in the same place."""
    import cv2

    h, w = 64, 64
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 29:] = 1.0  # the edge falls between coarse pixels (29 is not a multiple of 4)
    fg, bg = np.array([0.9, 0.3, 0.2], np.float32), np.array([0.1, 0.4, 0.8], np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    small_img = cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(alpha, (16, 16), interpolation=cv2.INTER_AREA)
    bilinear = cv2.resize(small_alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    guided = guided_upsample(small_img, small_alpha, image)
    assert np.abs(guided - alpha).mean() < 0.25 * np.abs(bilinear - alpha).mean()
    assert np.abs(guided - alpha).max() < 0.1


def test_refinement_solves_a_big_photo_on_a_smaller_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 1 MP the band is ~11 px; the sparse solve runs where it is ``SOLVE_BAND`` px."""
    import models.refine.closed_form as cf

    seen: list[tuple[int, int]] = []
    real = cf.closed_form_alpha

    def spy(image: np.ndarray, trimap: np.ndarray, eps: float = cf.EPSILON) -> np.ndarray:
        seen.append(trimap.shape)
        return real(image, trimap, eps)

    monkeypatch.setattr(cf, "closed_form_alpha", spy)
    h, w = 1000, 1000
    image, _ = _two_colour_blend(h, w)
    matte = np.zeros((h, w), np.float32)
    matte[200:900, 250:750] = 1.0
    refined = refine_matte(image, matte, band=12)
    assert len(seen) == 1
    assert max(seen[0]) <= 0.3 * 1000
    assert refined.shape == (h, w) and refined[550, 500] == 1.0 and refined[50, 50] == 0.0


def test_foreground_estimation_removes_background_colour() -> None:
    """In a 50% red-on-green pixel the image is olive; the estimated F must be red again."""
    h, w = 60, 60
    alpha = np.zeros((h, w), np.float32)
    alpha[20:40, 20:40] = 1.0
    alpha[20:40, 40:44] = 0.5  # a soft fringe
    fg = np.zeros((h, w, 3), np.float32)
    fg[...] = (1.0, 0.0, 0.0)
    bg = np.zeros((h, w, 3), np.float32)
    bg[...] = (0.0, 1.0, 0.0)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    estimated = estimate_foreground(image, alpha)
    fringe = estimated[20:40, 40:44]
    assert image[30, 41, 1] == pytest.approx(0.5)
    assert fringe[..., 1].mean() < 0.1  # green (the background) gone from the fringe
    assert fringe[..., 0].mean() > 0.9


def test_refiner_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="differ"):
        ClosedFormRefiner().refine(np.zeros((10, 10, 3), np.uint8), np.zeros((5, 5)))


@pytest.mark.slow
def test_refinement_improves_iou_and_alpha_error_over_mediapipe() -> None:
    from models.cutout.mediapipe import MediapipeCutout

    segmenter = MediapipeCutout()
    raw_iou, raw_mae, ref_iou, ref_mae = [], [], [], []
    for comp in portraits.evaluation_set(include_photos=False):
        raw = segmenter.cutout(comp.image)
        refined = refine_matte(np.asarray(comp.image, np.float64) / 255.0, raw)
        raw_iou.append(portraits.iou(raw, comp.alpha))
        raw_mae.append(portraits.mean_abs_error(raw, comp.alpha))
        ref_iou.append(portraits.iou(refined, comp.alpha))
        ref_mae.append(portraits.mean_abs_error(refined, comp.alpha))
    assert np.mean(raw_iou) > 0.9  # the coarse mask is already decent
    assert np.mean(ref_iou) > np.mean(raw_iou)
    assert np.mean(ref_mae) < np.mean(raw_mae)


@pytest.mark.slow
def test_refinement_on_a_smaller_grid_matches_the_full_resolution_solve() -> None:
    """The fast path (solve at ``SOLVE_BAND`` px, guided upsampling) against the same solve
    at full resolution, on the evaluation set: no worse on average (a hair of tolerance for
    floating point; bench/image.py reports both figures in full)."""
    from models.cutout.mediapipe import MediapipeCutout

    segmenter = MediapipeCutout()
    fast_iou, fast_mae, full_iou, full_mae = [], [], [], []
    for comp in portraits.evaluation_set(include_photos=False):
        raw = segmenter.cutout(comp.image)
        rgb = np.asarray(comp.image, np.float64) / 255.0
        fast = refine_matte(rgb, raw)
        full = refine_matte(rgb, raw, solve_band=1000)  # never downscaled
        fast_iou.append(portraits.iou(fast, comp.alpha))
        fast_mae.append(portraits.mean_abs_error(fast, comp.alpha))
        full_iou.append(portraits.iou(full, comp.alpha))
        full_mae.append(portraits.mean_abs_error(full, comp.alpha))
    assert np.mean(fast_iou) >= np.mean(full_iou) - 0.001
    assert np.mean(fast_mae) <= np.mean(full_mae) + 0.0005
