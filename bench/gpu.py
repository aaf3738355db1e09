"""Each neural engine on a device, with random weights at the released sizes.

    .venv/bin/python bench/gpu.py [--device cuda|cpu] [--repeats 5]

Checkpoints are written from the parity manifests (``tests/models/data``: every tensor of the
released files) into a temporary ``STUDIO_MODELS_DIR`` and loaded through the engines' own
loaders, so what is timed is what a message runs (float16 where the engine uses it on CUDA):

  * Wav2Lip: network frames/s on 96 px faces (batch from free memory), and a whole 512x512
    render (built-in frames + Wav2Lip mouth + H.264) in frames/s;
  * SegFormer-b2 and SAM2.1-tiny: ms per megapixel of a 1 MP photo;
  * OpenVoice v2: real-time factor (seconds of compute per second of 22.05 kHz speech);
  * BiRefNet: timed only where its own code and packages are installed.

The first call of each engine (load + warm-up) is reported apart from the median of the
repeats. Random weights compute the same work as real ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from models.base import Audio, EngineSettings, RenderRequest, Speech, VoiceTarget  # noqa: E402

DATA = ROOT / "tests" / "models" / "data"
PORTRAIT = ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg"


def random_state(tensors: dict[str, list[Any]]) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(0)
    out = {}
    for key, (shape, dtype) in tensors.items():
        dt = getattr(torch, dtype)
        if dt.is_floating_point:
            t = torch.randn(shape, generator=gen) * 0.05
            out[key] = (t.abs() + 1.0) if key.endswith("running_var") else t
        else:
            out[key] = torch.zeros(shape, dtype=dt)
    return out


def write_checkpoints(root: Path) -> None:
    import torch
    from safetensors.torch import save_file

    m = json.loads((DATA / "wav2lip_gan.json").read_text())
    (root / "wav2lip").mkdir(parents=True)
    torch.save({"state_dict": {"module." + k: v for k, v in random_state(m["tensors"]).items()}},
               root / "wav2lip" / "wav2lip_gan.pth")
    m = json.loads((DATA / "openvoice_v2_converter.json").read_text())
    folder = root / "openvoice_v2" / "converter"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(m["config"]))
    torch.save({"model": random_state(m["tensors"])}, folder / "checkpoint.pth")
    for name, file in (("segformer", "segformer_b2_clothes.json"),
                       ("sam2", "sam2.1_hiera_tiny.json")):
        m = json.loads((DATA / file).read_text())
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps(m["config"]))
        save_file(random_state(m["tensors"]), str(root / name / "model.safetensors"))


def timed(fn: Callable[[], Any], repeats: int, device: str) -> tuple[float, float]:
    """(first call s, median of ``repeats`` later calls s)."""
    import torch

    def once() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    first = once()
    return first, statistics.median(once() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import torch
    from PIL import Image

    from models.gpu import batch_size, keep, torch_device

    device = torch_device(args.device)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    print(f"device: {device} ({name}); torch {torch.__version__}; threads "
          f"{torch.get_num_threads()}; repeats {args.repeats}")
    if args.device == "cuda" and device != "cuda":
        print("CUDA is not available here: timing on the CPU instead (a smoke test).")
    root = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    write_checkpoints(root)
    settings = EngineSettings(models_dir=root, device=args.device)
    rows: list[list[str]] = []
    photo = Image.open(PORTRAIT).convert("RGB")
    scale = (1_000_000 / (photo.width * photo.height)) ** 0.5
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    rgb = np.asarray(photo)
    mp = rgb.shape[0] * rgb.shape[1] / 1e6

    # Wav2Lip: the network alone, then a whole render
    from models.talking_head.wav2lip import Wav2LipHead, redraw_faces

    head = Wav2LipHead(settings)
    model = head._model.get()
    dev = str(next(model.parameters()).device)
    n = batch_size(dev, per_item_mb=24.0, default=16)
    faces = np.random.default_rng(0).integers(0, 256, (n, 96, 96, 3)).astype(np.uint8)
    mels = np.random.default_rng(1).normal(size=(n, 80, 16)).astype(np.float32)
    key = keep("bench:wav2lip", model)
    first, med = timed(lambda: redraw_faces(key, faces, mels), args.repeats, device)
    rows.append(["wav2lip network", f"batch {n}, 96 px, {next(model.parameters()).dtype}",
                 f"{first:.2f}", f"{n / med:.0f} frames/s"])
    t = np.arange(24000 * 4) / 24000
    speech = Speech(Audio((0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0))
                          .astype(np.float32), 24000))
    out = root / "w.mp4"

    def render() -> None:
        head.render(RenderRequest(photo, speech, size=(512, 512), output=out))

    first, med = timed(render, max(1, args.repeats // 3), device)
    rows.append(["wav2lip render", "4 s, 512x512 output, H.264", f"{first:.2f}",
                 f"{100 / med:.0f} frames/s ({4 / med:.2f}x real time)"])

    from models.cutout.segformer import SegformerCutout

    seg = SegformerCutout(settings)
    first, med = timed(lambda: seg.person_probability(rgb), args.repeats, device)
    rows.append(["segformer-b2", f"{rgb.shape[1]}x{rgb.shape[0]} photo, 512 input",
                 f"{first:.2f}", f"{1000 * med / mp:.0f} ms/MP"])

    from models.refine.sam2 import Sam2Refiner

    sam = Sam2Refiner(settings)
    h, w = rgb.shape[:2]
    matte = np.zeros((h, w), np.float32)
    matte[h // 5:, w // 4: 3 * w // 4] = 1.0
    box = (w // 4, h // 5, 3 * w // 4, h)
    first, med = timed(lambda: sam.segment(rgb, matte, box), args.repeats, device)
    rows.append(["sam2.1-tiny", "1 MP photo, 1024 input, box+point+mask",
                 f"{first:.2f}", f"{1000 * med / mp:.0f} ms/MP"])

    from models.voice.openvoice import OpenVoiceConverter

    ov = OpenVoiceConverter(settings)
    rate = 22050
    t = np.arange(rate * 5) / rate
    voice = Audio((0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), rate)
    # the voice converts to itself; the target's tone colour is computed on the first call
    # and cached under its key after, as for a profile's later messages
    target = VoiceTarget(key="bench", reference=voice)
    first, med = timed(lambda: ov.convert(voice, target), args.repeats, device)
    rows.append(["openvoice v2", "5 s of speech", f"{first:.2f}", f"RTF {med / 5:.3f}"])

    from models.cutout.birefnet import BiRefNetCutout
    from models.hf import missing_imports

    missing = missing_imports(json.loads((DATA / "birefnet_lite.json").read_text())
                              ["imports_needed"])
    bir = BiRefNetCutout(EngineSettings(models_dir=ROOT / "data" / "models",
                                        device=args.device))
    ok, why = bir.available()
    if ok:
        first, med = timed(lambda: bir.predict(rgb), args.repeats, device)
        rows.append(["birefnet", "1 MP photo, 1024 input", f"{first:.2f}",
                     f"{1000 * med / mp:.0f} ms/MP"])
    else:
        rows.append(["birefnet", "not timed", "-",
                     f"missing {', '.join(missing)}" if missing else why[:60]])

    widths = [max(len(r[i]) for r in [["engine", "case", "first s", "speed"], *rows])
              for i in range(4)]
    for r in [["engine", "case", "first s", "speed"], *rows]:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
