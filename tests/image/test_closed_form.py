"""Closed-form matting and foreground estimation on images whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from models.closed_form import (
    ClosedFormRefiner,
    closed_form_alpha,
    estimate_foreground,
    make_trimap,
    refine_matte,
)
from tests.image import portraits


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
    from models.mediapipe_selfie import MediapipeCutout

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
