"""Image benchmarks: speed per megapixel and matte quality, raw vs refined.

    /work/main/.venv/bin/python bench/image.py [--quick] [--pymatting]

Speed: milliseconds per megapixel for detection, segmentation and refinement, per engine
available here, at 0.25, 1 and 4 MP (median of 3 runs after a warm-up). Engines without
weights on this machine are listed as "n/a". The closed-form refiner of ``main`` (the
full-resolution solve, loaded with ``bench/baseline.py``) runs in the same process as
``closed_form (main)``; the cutout table adds detection + mediapipe segmentation +
refinement per MP for both, wall and CPU time, and the ratio.

Quality: the evaluation set of ``tests/fixtures/portraits.py`` (one real public-domain portrait
cut along a hand-drawn silhouette, with synthetic hair strands of known fractional alpha,
composited onto real photos shipped by installed packages and generated busy backgrounds).
IoU (alpha > 0.5) and mean absolute alpha error of the raw mediapipe mask and after
closed-form refinement. ``--pymatting`` also scores pymatting's own closed-form solver on the
same trimaps (its first import JIT-compiles for a minute or more).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baseline import baseline_module  # noqa: E402
from models.base import EngineSettings, MatteRefiner, PersonCutout  # noqa: E402
from models.chain import Engine  # noqa: E402
from models.cutout.mediapipe import MediapipeCutout  # noqa: E402
from models.detect.person import PersonDetector  # noqa: E402
from models.refine.closed_form import (  # noqa: E402
    ClosedFormRefiner,
    as_float_rgb,
    band_width,
    make_trimap,
    refine_matte,
)
from tests.fixtures import portraits  # noqa: E402

BASELINE = baseline_module("models/refine/closed_form.py", was=["models/closed_form.py"])

SIZES_MP = (0.25, 1.0, 4.0)


def _at_megapixels(image: Image.Image, mp: float) -> Image.Image:
    scale = (mp * 1e6 / (image.width * image.height)) ** 0.5
    return image.resize((int(image.width * scale), int(image.height * scale)),
                        Image.Resampling.LANCZOS)


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``runs`` calls after a warm-up."""
    fn()  # warm-up (model load, caches)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


class _BaselineRefiner:
    """``main``'s closed-form refiner, for the side-by-side rows."""

    name = "closed_form (main)"
    prompted = False

    def available(self) -> tuple[bool, str]:
        return BASELINE is not None, "git show main:models/refine/closed_form.py"

    def refine(self, image: Any, matte: np.ndarray,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        assert BASELINE is not None
        return BASELINE.refine_matte(BASELINE.as_float_rgb(image), matte.astype(np.float32))

    def close(self) -> None:
        pass


def speed_table(runs: int) -> list[tuple[str, str, float, float, float]]:
    """Rows (stage, engine, MP, wall ms/MP, CPU ms/MP)."""
    base = portraits.single_portrait("stripes").image
    settings = EngineSettings()
    detector = PersonDetector(settings)
    rows = []
    cutouts: list[PersonCutout] = [MediapipeCutout(settings)]
    for module, cls in (("models.cutout.segformer", "SegformerCutout"),
                        ("models.cutout.birefnet", "BiRefNetCutout")):
        engine = getattr(__import__(module, fromlist=[cls]), cls)(settings)
        cutouts.append(engine)
    refiners: list[MatteRefiner] = [ClosedFormRefiner(settings), _BaselineRefiner()]
    from models.refine.sam2 import Sam2Refiner

    refiners.append(Sam2Refiner(settings))
    masker = MediapipeCutout(settings)
    for mp in SIZES_MP:
        image = _at_megapixels(base, mp)
        real_mp = image.width * image.height / 1e6
        matte = masker.cutout(image)
        # (stage, row name, the engine when it may be unavailable, the call timed)
        timed: list[tuple[str, str, Engine | None, Callable[[], object]]] = [
            ("detection", "mediapipe face+selfie+pose", None, partial(detector.detect, image))]
        timed += [("segmentation", e.name, e, partial(e.cutout, image)) for e in cutouts]
        timed += [("refinement", e.name, e, partial(e.refine, image, matte)) for e in refiners]
        for stage, name, engine, call in timed:
            if engine is not None and not engine.available()[0]:
                rows.append((stage, name, mp, float("nan"), float("nan")))
                continue
            wall, cpu = _time(call, runs)
            rows.append((stage, name, mp, 1000 * wall / real_mp, 1000 * cpu / real_mp))
    return rows


def cutout_totals(rows: list[tuple[str, str, float, float, float]]) -> None:
    """Detection + mediapipe segmentation + closed-form refinement, main vs this tree."""
    def cell(stage: str, name: str, mp: float) -> tuple[float, float]:
        """(wall, CPU) ms per MP of one stage's engine at one size."""
        return next((r[3], r[4]) for r in rows if (r[0], r[1], r[2]) == (stage, name, mp))

    print("\n## Cutout: detection + segmentation (mediapipe) + refinement, ms per MP\n")
    print("| MP | main wall | this wall | main CPU | this CPU | wall ratio | CPU ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for mp in SIZES_MP:
        totals: dict[str, tuple[float, float]] = {}
        for ref in ("closed_form (main)", "closed_form"):
            parts = (cell("detection", "mediapipe face+selfie+pose", mp),
                     cell("segmentation", "mediapipe", mp), cell("refinement", ref, mp))
            totals[ref] = (sum(p[0] for p in parts), sum(p[1] for p in parts))
        (old_w, old_c), (new_w, new_c) = totals["closed_form (main)"], totals["closed_form"]
        print(f"| {mp} | {old_w:.0f} | {new_w:.0f} | {old_c:.0f} | {new_c:.0f} | "
              f"{old_w / new_w:.1f}x | {old_c / new_c:.1f}x |")


def quality_table(use_pymatting: bool) -> list[dict[str, object]]:
    segmenter = MediapipeCutout()
    rows = []
    cf = None
    if use_pymatting:
        from pymatting import estimate_alpha_cf

        cf = estimate_alpha_cf
    for comp in portraits.evaluation_set():
        raw = segmenter.cutout(comp.image)
        rgb = as_float_rgb(comp.image)
        start = time.process_time()
        refined = refine_matte(rgb, raw)
        seconds = time.process_time() - start
        row: dict[str, object] = {
            "name": comp.name,
            "raw_iou": portraits.iou(raw, comp.alpha),
            "raw_mae": portraits.mean_abs_error(raw, comp.alpha),
            "ref_iou": portraits.iou(refined, comp.alpha),
            "ref_mae": portraits.mean_abs_error(refined, comp.alpha),
            "ref_s": seconds,
        }
        if BASELINE is not None:
            start = time.process_time()
            old = BASELINE.refine_matte(rgb, raw)
            row["main_s"] = time.process_time() - start
            row["main_iou"] = portraits.iou(old, comp.alpha)
            row["main_mae"] = portraits.mean_abs_error(old, comp.alpha)
        if cf is not None:
            trimap = make_trimap(raw, band_width(raw)).astype(np.float64)
            start = time.perf_counter()
            pm = np.clip(cf(rgb, trimap), 0, 1)
            row["pm_iou"] = portraits.iou(pm, comp.alpha)
            row["pm_mae"] = portraits.mean_abs_error(pm, comp.alpha)
            row["pm_s"] = time.perf_counter() - start
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 timed run instead of 3")
    parser.add_argument("--pymatting", action="store_true",
                        help="also score pymatting.estimate_alpha_cf on the same trimaps")
    args = parser.parse_args()

    print("## Speed (ms per megapixel, median of runs; n/a = no weights here)\n")
    print("| stage | engine | 0.25 MP | 1 MP | 4 MP | CPU 0.25 | CPU 1 | CPU 4 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    rows = speed_table(1 if args.quick else 3)
    keys = list(dict.fromkeys((r[0], r[1]) for r in rows))
    for stage, name in keys:
        cells = []
        for col in (3, 4):
            for mp in SIZES_MP:
                value = next(r[col] for r in rows if (r[0], r[1], r[2]) == (stage, name, mp))
                cells.append("n/a" if np.isnan(value) else f"{value:.0f}")
        print(f"| {stage} | {name} | " + " | ".join(cells) + " |")
    if BASELINE is not None:
        cutout_totals(rows)

    print("\n## Matte quality on the evaluation set (raw mediapipe, closed-form refined by main's "
          "full-resolution solve and by this tree's; refine s = CPU seconds)\n")
    quality = quality_table(args.pymatting)
    main = BASELINE is not None
    extra = " pymatting IoU | pymatting MAE |" if args.pymatting else ""
    print("| image | raw IoU | main IoU | refined IoU | raw MAE | main MAE | refined MAE "
          "| main s | refine s |" + extra)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.pymatting else ""))

    def line_for(r: Mapping[str, object], name: str, digits: int) -> str:
        def m(key: str, d: int = digits) -> str:
            return f"{r[key]:.{d}f}" if main else "n/a"

        line = (f"| {name} | {r['raw_iou']:.{digits}f} | {m('main_iou')} | "
                f"{r['ref_iou']:.{digits}f} | {r['raw_mae']:.{digits}f} | {m('main_mae')} | "
                f"{r['ref_mae']:.{digits}f} | {m('main_s', 3)} | {r['ref_s']:.3f} |")
        if args.pymatting:
            line += f" {r['pm_iou']:.4f} | {r['pm_mae']:.4f} |"
        return line

    for r in quality:
        print(line_for(r, str(r["name"]), 4))
    mean = {k: float(np.mean([r[k] for r in quality])) for k in quality[0] if k != "name"}
    print(line_for(mean, "**mean**", 5))
    if main:
        kept = mean["ref_iou"] >= mean["main_iou"] and mean["ref_mae"] <= mean["main_mae"]
        print(f"\nMatte no worse than main's (mean IoU >= and mean MAE <=): "
              f"{'yes' if kept else 'NO'}; refinement CPU {mean['main_s'] / mean['ref_s']:.1f}x "
              "less")
    better = mean["ref_iou"] > mean["raw_iou"] and mean["ref_mae"] < mean["raw_mae"]
    print(f"\nRefinement improves both IoU and MAE on average: {'yes' if better else 'NO'}")


if __name__ == "__main__":
    main()
