"""Image benchmarks: speed per megapixel and matte quality, raw vs refined.

    /work/main/.venv/bin/python bench/image.py [--quick] [--pymatting]

Speed: milliseconds per megapixel for detection, segmentation and refinement, per engine
available here, at 0.25, 1 and 4 MP (median of 3 runs after a warm-up). Engines without
weights on this machine are listed as "n/a".

Quality: the evaluation set of ``tests/image/portraits.py`` (one real public-domain portrait
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
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.base import EngineSettings  # noqa: E402
from models.closed_form import (  # noqa: E402
    ClosedFormRefiner,
    as_float_rgb,
    band_width,
    make_trimap,
    refine_matte,
)
from models.mediapipe_selfie import MediapipeCutout  # noqa: E402
from models.person_detect import PersonDetector  # noqa: E402
from tests.image import portraits  # noqa: E402

SIZES_MP = (0.25, 1.0, 4.0)


def _at_megapixels(image: Image.Image, mp: float) -> Image.Image:
    scale = (mp * 1e6 / (image.width * image.height)) ** 0.5
    return image.resize((int(image.width * scale), int(image.height * scale)),
                        Image.Resampling.LANCZOS)


def _time(fn, runs: int) -> float:
    fn()  # warm-up (model load, caches)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed_table(runs: int) -> list[tuple[str, str, float, float]]:
    base = portraits.single_portrait("stripes").image
    settings = EngineSettings()
    detector = PersonDetector(settings)
    rows = []
    engines: list[tuple[str, str, object]] = [("detection", "mediapipe face+selfie+pose",
                                               None)]
    cutouts = [MediapipeCutout(settings)]
    for module, cls in (("models.segformer", "SegformerCutout"),
                        ("models.birefnet", "BiRefNetCutout")):
        engine = getattr(__import__(module, fromlist=[cls]), cls)(settings)
        cutouts.append(engine)
    refiners = [ClosedFormRefiner(settings)]
    from models.sam2 import Sam2Refiner

    refiners.append(Sam2Refiner(settings))
    for engine in cutouts:
        engines.append(("segmentation", engine.name, engine))
    for engine in refiners:
        engines.append(("refinement", engine.name, engine))
    masker = MediapipeCutout(settings)
    for mp in SIZES_MP:
        image = _at_megapixels(base, mp)
        real_mp = image.width * image.height / 1e6
        matte = masker.cutout(image)
        for stage, name, engine in engines:
            if engine is not None and not engine.available()[0]:
                rows.append((stage, name, mp, float("nan")))
                continue
            if stage == "detection":
                seconds = _time(lambda im=image: detector.detect(im), runs)
            elif stage == "segmentation":
                seconds = _time(lambda e=engine, im=image: e.cutout(im), runs)
            else:
                seconds = _time(lambda e=engine, im=image, m=matte: e.refine(im, m), runs)
            rows.append((stage, name, mp, 1000 * seconds / real_mp))
    return rows


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
        start = time.perf_counter()
        refined = refine_matte(rgb, raw)
        seconds = time.perf_counter() - start
        row: dict[str, object] = {
            "name": comp.name,
            "raw_iou": portraits.iou(raw, comp.alpha),
            "raw_mae": portraits.mean_abs_error(raw, comp.alpha),
            "ref_iou": portraits.iou(refined, comp.alpha),
            "ref_mae": portraits.mean_abs_error(refined, comp.alpha),
            "ref_s": seconds,
        }
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
    print("| stage | engine | 0.25 MP | 1 MP | 4 MP |")
    print("|---|---|---:|---:|---:|")
    rows = speed_table(1 if args.quick else 3)
    keys = list(dict.fromkeys((s, n) for s, n, _, _ in rows))
    for stage, name in keys:
        cells = []
        for mp in SIZES_MP:
            value = next(v for s, n, m, v in rows if (s, n, m) == (stage, name, mp))
            cells.append("n/a" if np.isnan(value) else f"{value:.0f}")
        print(f"| {stage} | {name} | " + " | ".join(cells) + " |")

    print("\n## Matte quality on the evaluation set (raw mediapipe vs closed-form refined)\n")
    quality = quality_table(args.pymatting)
    extra = " pymatting IoU | pymatting MAE |" if args.pymatting else ""
    print("| image | raw IoU | refined IoU | raw MAE | refined MAE | refine s |" + extra)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.pymatting else ""))
    for r in quality:
        line = (f"| {r['name']} | {r['raw_iou']:.4f} | {r['ref_iou']:.4f} | "
                f"{r['raw_mae']:.4f} | {r['ref_mae']:.4f} | {r['ref_s']:.2f} |")
        if args.pymatting:
            line += f" {r['pm_iou']:.4f} | {r['pm_mae']:.4f} |"
        print(line)
    mean = {k: float(np.mean([r[k] for r in quality])) for k in quality[0] if k != "name"}
    line = (f"| **mean** | {mean['raw_iou']:.4f} | {mean['ref_iou']:.4f} | "
            f"{mean['raw_mae']:.4f} | {mean['ref_mae']:.4f} | {mean['ref_s']:.2f} |")
    if args.pymatting:
        line += f" {mean['pm_iou']:.4f} | {mean['pm_mae']:.4f} |"
    print(line)
    better = mean["ref_iou"] > mean["raw_iou"] and mean["ref_mae"] < mean["raw_mae"]
    print(f"\nRefinement improves both IoU and MAE on average: {'yes' if better else 'NO'}")


if __name__ == "__main__":
    main()
