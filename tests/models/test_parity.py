"""Parity with the released checkpoints, without the network.

``tests/models/data/*.json`` are facts about the released files (every tensor's name, shape
and dtype, the container layout, the real config), derived once by building the original
architectures from their public source (Wav2Lip, OpenVoice, BiRefNet; commits recorded in
each file) or transformers' own classes (SegFormer, SAM2). Each test checks that the studio
builds exactly that set, then writes a random checkpoint in the released layout straight from
the manifest (not from the studio's model) and loads it through the production loader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # a requirement of the studio: missing, these tests fail, not skip

from models.base import Audio, EngineSettings, VoiceTarget
from models.chain import FallbackChain

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


def manifest(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text("utf-8"))


def shapes(state: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in state.items()}


def random_state(tensors: dict[str, list[Any]], seed: int = 0) -> dict[str, Any]:
    """Random tensors of the manifest's shapes and dtypes (variances kept positive)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, (shape, dtype) in tensors.items():
        dt = getattr(torch, dtype)
        if dt.is_floating_point:
            t = torch.randn(shape, generator=gen, dtype=torch.float32) * 0.05
            if key.endswith("running_var"):
                t = t.abs() + 1.0
            out[key] = t.to(dt)
        else:
            out[key] = torch.zeros(shape, dtype=dt)
    return out


# ------------------------------------------------------------------------------- Wav2Lip


def test_wav2lip_builds_the_released_tensor_set() -> None:
    from models.talking_head.wav2lip import build_model

    m = manifest("wav2lip_gan.json")
    assert shapes(build_model().state_dict()) == m["tensors"]


@pytest.mark.parametrize("legacy", [True, False])
def test_wav2lip_loads_the_released_container(tmp_path: Path, legacy: bool) -> None:
    """``{'state_dict': {'module.' + k}, 'optimizer', 'global_step', 'global_epoch'}``, in the
    legacy (torch 1.x) pickle the release was written with, and in today's zip format."""
    from models.talking_head.wav2lip import Wav2LipHead

    m = manifest("wav2lip_gan.json")
    assert m["container"]["keys"] == ["state_dict", "optimizer", "global_step", "global_epoch"]
    state = random_state(m["tensors"])
    params = [v for k, v in state.items() if "running" not in k and "num_batches" not in k]
    optimizer = {"state": {i: {"step": 10, "exp_avg": torch.zeros_like(p),
                               "exp_avg_sq": torch.zeros_like(p)} for i, p in enumerate(params)},
                 "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.999), "eps": 1e-8,
                                   "weight_decay": 0, "amsgrad": False,
                                   "params": list(range(len(params)))}]}
    folder = tmp_path / "wav2lip"
    folder.mkdir()
    torch.save({"state_dict": {m["container"]["state_dict_prefix"] + k: v
                               for k, v in state.items()},
                "optimizer": optimizer, "global_step": 250000, "global_epoch": 120},
               folder / "wav2lip_gan.pth", _use_new_zipfile_serialization=not legacy)
    engine = Wav2LipHead(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    model = engine._model.get()  # the production loader
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_wav2lip_unreadable_checkpoint_is_reported_not_ready(tmp_path: Path) -> None:
    """A truncated or foreign file: the render falls to the next engine with the reason, and
    ``available()`` (the Engines panel) says so until the file changes."""
    from models.talking_head.wav2lip import Wav2LipHead

    (tmp_path / "wav2lip").mkdir()
    (tmp_path / "wav2lip" / "wav2lip_gan.pth").write_bytes(b"PK\x03\x04 truncated")
    engine = Wav2LipHead(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]  # files present; not loaded yet

    class Builtin:
        name = "builtin"

        def available(self) -> tuple[bool, str]:
            return True, "ready"

        def render(self, request: Any, progress: Any = None) -> str:
            return "builtin.mp4"

        def close(self) -> None:
            pass

    chain = FallbackChain("talking_head", [engine, Builtin()])
    result = chain.run(lambda e: e.render(None))
    assert result.backend == "builtin"
    assert "could not load" in result.attempts[0].reason
    ok, why = engine.available()
    assert not ok
    assert "wav2lip_gan.pth" in why


def test_wav2lip_input_is_bgr_as_the_original_inference() -> None:
    """The original ``inference.py`` reads frames with OpenCV (BGR) and feeds them unchanged;
    ``face_rig`` renders RGB. A red face must reach the network in the last channel, and the
    network's BGR output must come back as RGB."""
    from torch import nn

    from models.gpu import keep
    from models.talking_head.wav2lip import FACE, redraw_faces

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))
            self.seen: Any = None

        def forward(self, mels: Any, faces: Any) -> Any:
            self.seen = faces.clone()
            out = torch.zeros(faces.shape[0], 3, FACE, FACE)
            out[:, 0] = 1.0  # channel 0 of the network's output is blue (BGR)
            return out + self.w

    red = np.zeros((2, FACE, FACE, 3), np.uint8)
    red[..., 0] = 255  # RGB red
    probe = Probe()
    out = redraw_faces(keep("test:probe", probe), red, np.zeros((2, 80, 16), np.float32))
    seen = probe.seen
    assert seen.shape == (2, 6, FACE, FACE)
    # channels 3..5: the unmasked face in B, G, R order -> red is channel 5
    assert float(seen[:, 5].min()) == 1.0
    assert float(seen[:, 3].max()) == 0.0
    # channels 0..2: the masked face; the lower half is black, the upper half red in R
    assert float(seen[:, 2, : FACE // 2].min()) == 1.0
    assert float(seen[:, :3, FACE // 2:].abs().max()) == 0.0
    # the output's blue comes back as RGB blue
    assert out.shape == (2, FACE, FACE, 3)
    assert np.allclose(out[..., 2], 255.0)
    assert np.allclose(out[..., 0], 0.0)


def test_wav2lip_matches_the_original_pipeline_on_the_same_weights() -> None:
    """``inference.py``: BGR crops, lower half zeroed, (masked, full) / 255, NCHW; output
    x 255 is BGR. Written out here from the original's lines 136-151 and 265."""
    from models.gpu import keep
    from models.talking_head.wav2lip import build_model, redraw_faces

    torch.manual_seed(1)
    model = build_model().eval()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 96, 96, 3)).astype(np.uint8)
    mels = rng.normal(size=(3, 80, 16)).astype(np.float32)
    img_batch = rgb[..., ::-1].copy()  # cv2.imread gives BGR
    img_masked = img_batch.copy()
    img_masked[:, 96 // 2:] = 0
    img_batch = np.concatenate((img_masked, img_batch), axis=3) / 255.0
    mel_batch = np.reshape(mels, [len(mels), 80, 16, 1])
    with torch.no_grad():
        pred = model(torch.FloatTensor(np.transpose(mel_batch, (0, 3, 1, 2))),
                     torch.FloatTensor(np.transpose(img_batch, (0, 3, 1, 2))))
    reference_bgr = pred.numpy().transpose(0, 2, 3, 1) * 255.0
    ours = redraw_faces(keep("test:w2l", model), rgb, mels)
    assert np.abs(ours[..., ::-1] - reference_bgr).max() < 1e-3


# ------------------------------------------------------------------------------ OpenVoice


def test_openvoice_builds_the_released_tensor_set_from_the_real_config() -> None:
    from models.voice.openvoice import DEFAULT_CONFIG, build_model

    m = manifest("openvoice_v2_converter.json")
    assert m["config"] == DEFAULT_CONFIG
    assert shapes(build_model(m["config"]).state_dict()) == m["tensors"]


def test_openvoice_loads_the_released_container_and_converts(tmp_path: Path) -> None:
    from models.voice.openvoice import OpenVoiceConverter

    m = manifest("openvoice_v2_converter.json")
    folder = tmp_path / "openvoice_v2" / "converter"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(m["config"]))
    state = random_state(m["tensors"])
    torch.save({"model": state}, folder / "checkpoint.pth")
    engine = OpenVoiceConverter(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    loaded = engine._model.get().model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    rate = 22050
    t = np.arange(int(rate * 1.2)) / rate
    voice = Audio((0.3 * np.sin(2 * np.pi * 160 * t)).astype(np.float32), rate)
    out = engine.convert(voice, VoiceTarget("p:1", voice))
    assert out.sample_rate == rate
    assert len(out.samples) == len(voice.samples)
    assert np.isfinite(out.samples).all()


def test_openvoice_with_a_broken_checkpoint_falls_back_with_the_reason(tmp_path: Path) -> None:
    from models.voice.openvoice import OpenVoiceConverter

    m = manifest("openvoice_v2_converter.json")
    folder = tmp_path / "openvoice_v2" / "converter"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(m["config"]))
    state = random_state(m["tensors"])
    state.pop(next(iter(state)))  # one tensor short: load_state_dict(strict=True) refuses
    torch.save({"model": state}, folder / "checkpoint.pth")
    engine = OpenVoiceConverter(EngineSettings(models_dir=tmp_path, device="cpu"))
    voice = Audio(np.zeros(22050, np.float32), 22050)

    class Next:
        name = "next"

        def available(self) -> tuple[bool, str]:
            return True, "ready"

        def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
            return audio

        def close(self) -> None:
            pass

    chain = FallbackChain("voice_converter", [engine, Next()])
    result = chain.run(lambda e: e.convert(voice, VoiceTarget("p", voice)))
    assert result.backend == "next"
    assert result.attempts[0].outcome == "failed"
    assert "could not load" in result.attempts[0].reason
    ok, why = engine.available()  # remembered until the files change: the panel says so
    assert not ok
    assert "Missing key" in why
    torch.save({"model": random_state(m["tensors"])}, folder / "checkpoint.pth")
    assert engine.available()[0]


# ------------------------------------------------------------------------------ SegFormer


def _save_hf(folder: Path, m: dict[str, Any]) -> dict[str, Any]:
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(m["config"]))
    state = random_state(m["tensors"])
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return state


def test_segformer_b2_clothes_checkpoint_loads_completely(tmp_path: Path) -> None:
    from models.cutout.segformer import SegformerCutout, person_labels

    m = manifest("segformer_b2_clothes.json")
    state = _save_hf(tmp_path / "segformer", m)
    engine = SegformerCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    model, _ = engine._model.get()
    loaded = model.state_dict()
    assert shapes(loaded) == m["tensors"]
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    labels = {int(k): v for k, v in m["config"]["id2label"].items()}
    assert [labels[i] for i in set(labels) - set(person_labels(labels))] == ["Background", "Bag"]
    rng = np.random.default_rng(0)
    matte = engine.person_probability(rng.integers(0, 256, (64, 48, 3)).astype(np.uint8))
    assert matte.shape == (64, 48)
    assert 0.0 <= matte.min() <= matte.max() <= 1.0


def test_segformer_preprocessing_is_the_documented_one() -> None:
    """SegformerImageProcessor: resize to 512x512 (bilinear), rescale 1/255, ImageNet mean and
    std; the studio's ``to_pixel_values`` does the same."""
    from transformers import SegformerImageProcessor

    from models.hf import to_pixel_values

    proc = SegformerImageProcessor()
    assert proc.size == {"height": 512, "width": 512}
    assert np.allclose(proc.image_mean, [0.485, 0.456, 0.406])
    assert np.allclose(proc.image_std, [0.229, 0.224, 0.225])
    rgb = np.random.default_rng(0).integers(0, 256, (512, 512, 3)).astype(np.uint8)
    ours = to_pixel_values(rgb, (512, 512), "cpu")
    theirs = proc(images=rgb, return_tensors="pt")["pixel_values"]
    assert torch.allclose(ours, theirs, atol=1e-4)


# ----------------------------------------------------------------------------------- SAM2


def test_sam2_video_checkpoint_loads_into_the_image_model(tmp_path: Path) -> None:
    """The hub's sam2.1-hiera-tiny is a ``sam2_video`` checkpoint: every tensor the image
    model has is in it and loads; only the tracking memory is left out."""
    from models.refine.sam2 import Sam2Refiner

    m = manifest("sam2.1_hiera_tiny.json")
    assert m["config"]["model_type"] == "sam2_video"
    state = _save_hf(tmp_path / "sam2", m)
    engine = Sam2Refiner(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    model, _ = engine._model.get()
    assert type(model).__name__ == "Sam2Model"
    loaded = model.state_dict()
    assert set(loaded) <= set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    left_out = {k.split(".")[0] for k in set(state) - set(loaded)}
    assert left_out <= {"memory_attention", "memory_encoder", "mask_downsample",
                        "object_pointer_proj", "temporal_positional_encoding_projection_layer",
                        "no_memory_positional_encoding", "no_object_pointer",
                        "occlusion_spatial_embedding_parameter", "memory_temporal_positional_encoding"}
    matte = np.zeros((80, 60), np.float32)
    matte[20:70, 15:45] = 1.0
    rgb = np.random.default_rng(0).integers(0, 256, (80, 60, 3)).astype(np.uint8)
    mask = engine.segment(rgb, matte, (15, 20, 45, 70))
    assert mask.shape == (80, 60)
    assert 0.0 <= mask.min() <= mask.max() <= 1.0


# ------------------------------------------------------------------------------- BiRefNet


def test_birefnet_checkpoint_without_its_code_packages_is_reported_not_ready(
        tmp_path: Path) -> None:
    """BiRefNet_lite in the hub layout: config.json with auto_map, model.safetensors of the
    original's tensors, and its own code that imports torchvision, timm, einops and kornia.
    Where those are not installed, ``available()`` says so (it said 'ready' before) and the
    chain moves on."""
    from models.cutout.birefnet import BiRefNetCutout
    from models.cutout.mediapipe import MediapipeCutout
    from models.hf import missing_imports

    m = manifest("birefnet_lite.json")
    assert m["config"]["bb"] == "swin_v1_t"
    assert sum(int(np.prod(s)) for s, _ in m["tensors"].values()) == pytest.approx(44.36e6,
                                                                                  rel=1e-3)
    folder = tmp_path / "birefnet"
    _save_hf(folder, {"config": {"auto_map": {
        "AutoConfig": "BiRefNet_config.BiRefNetConfig",
        "AutoModelForImageSegmentation": "birefnet.BiRefNet"}}, "tensors": m["tensors"]})
    (folder / "BiRefNet_config.py").write_text("from transformers import PretrainedConfig\n")
    code = "\n".join(
        f"import {name}" for name in m["imports_needed"]) + "\nfrom einops import rearrange\n" \
        "from kornia.filters import laplacian\nfrom torchvision.ops import deform_conv2d\n" \
        "from timm.layers import DropPath\n"
    (folder / "birefnet.py").write_text(code)
    missing = missing_imports(m["imports_needed"])
    engine = BiRefNetCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    ok, why = engine.available()
    if not missing:
        # BiRefNet's code packages are installed here: its checkpoint is ready, and a package
        # its code needs that is not installed still makes it not ready (never a skip)
        assert ok, why
        absent = "studio_tests_absent_package"
        (folder / "birefnet.py").write_text(code + f"import {absent}\n")
        missing = [absent]
        engine = BiRefNetCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
        ok, why = engine.available()
    assert not ok
    assert all(name in why for name in missing)
    picture = np.random.default_rng(0).integers(0, 256, (64, 48, 3)).astype(np.uint8)
    from PIL import Image

    chain = FallbackChain("cutout", [engine, MediapipeCutout()])
    result = chain.run(lambda e: e.cutout(Image.fromarray(picture)))
    assert result.backend == "mediapipe"
    assert result.attempts[0].outcome == "skipped"
