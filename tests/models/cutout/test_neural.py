"""The neural engines' real loading and inference code, on tiny randomly initialised models of
the real architectures saved to a temporary STUDIO_MODELS_DIR (nothing is downloaded)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch  # a requirement of the studio: missing, these tests fail, not skip
import transformers
from PIL import Image

from models.base import EngineSettings
from models.chain import FallbackChain
from models.refine.closed_form import ClosedFormRefiner

pytestmark = pytest.mark.slow


def _picture() -> Image.Image:
    rng = np.random.default_rng(0)
    arr = (rng.random((120, 90, 3)) * 255).astype(np.uint8)
    arr[30:110, 25:65] = (200, 150, 120)
    return Image.fromarray(arr)


# ------------------------------------------------------------------------------ SegFormer


# the label set of mattmdjaga/segformer_b2_clothes (its config.json's id2label)
CLOTHES_LABELS = ["Background", "Hat", "Hair", "Sunglasses", "Upper-clothes", "Skirt", "Pants",
                  "Dress", "Belt", "Left-shoe", "Right-shoe", "Face", "Left-leg", "Right-leg",
                  "Left-arm", "Right-arm", "Bag", "Scarf"]


def _save_segformer(root: Path, labels: list[str], winner: str | None = None) -> None:
    config = transformers.SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
        decoder_hidden_size=16, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    model = transformers.SegformerForSemanticSegmentation(config)
    with torch.no_grad():
        if winner is None:  # random but not flat: a matte that varies over the picture
            model.decode_head.classifier.weight.normal_(0.0, 2.0)
        else:  # one label wins everywhere
            model.decode_head.classifier.weight.zero_()
            model.decode_head.classifier.bias.zero_()
            model.decode_head.classifier.bias[labels.index(winner)] = 12.0
    model.save_pretrained(root / "segformer")


def test_segformer_unavailable_without_weights(tmp_path: Path) -> None:
    from models.cutout.segformer import SegformerCutout

    ok, why = SegformerCutout(EngineSettings(models_dir=tmp_path)).available()
    assert not ok
    assert "ALLOW_DOWNLOADS" in why


def test_segformer_person_labels_of_the_clothes_parser() -> None:
    from models.cutout.segformer import person_labels

    person = {CLOTHES_LABELS[i] for i in person_labels(dict(enumerate(CLOTHES_LABELS)))}
    assert person == set(CLOTHES_LABELS) - {"Background", "Bag"}
    lip = ["Background", "Hat", "Hair", "Glove", "Sunglasses", "UpperClothes", "Dress", "Coat",
           "Socks", "Pants", "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm",
           "Left-leg", "Right-leg", "Left-shoe", "Right-shoe"]  # LIP / CIHP parsers
    assert len(person_labels(dict(enumerate(lip)))) == len(lip) - 1


@pytest.mark.parametrize(("winner", "expected"),
                         [("Background", 0.0), ("Bag", 0.0), ("Hair", 1.0), ("Left-shoe", 1.0),
                          ("Upper-clothes", 1.0)])
def test_segformer_person_is_the_person_labels(tmp_path: Path, winner: str,
                                               expected: float) -> None:
    """A bag the person holds is not the person (1 - P(background) said it was)."""
    from models.cutout.segformer import SegformerCutout

    _save_segformer(tmp_path, CLOTHES_LABELS, winner)
    engine = SegformerCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    matte = engine.cutout(_picture())
    assert matte.shape == (120, 90)
    assert np.allclose(matte, expected, atol=0.01)


def test_segformer_without_person_labels_falls_back_with_the_reason(tmp_path: Path) -> None:
    from models.cutout.mediapipe import MediapipeCutout
    from models.cutout.segformer import SegformerCutout

    _save_segformer(tmp_path, ["background", "car", "road"], "car")
    chain = FallbackChain("cutout", [SegformerCutout(EngineSettings(models_dir=tmp_path,
                                                                    device="cpu")),
                                     MediapipeCutout()])
    result = chain.run(lambda e: e.cutout(_picture()))
    assert result.backend == "mediapipe"
    assert "no person labels" in result.attempts[0].reason


def test_segformer_random_weights_give_a_soft_matte_in_a_box(tmp_path: Path) -> None:
    from models.cutout.segformer import SegformerCutout

    _save_segformer(tmp_path, CLOTHES_LABELS)
    engine = SegformerCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    matte = engine.cutout(_picture(), box=(30, 40, 60, 100))
    assert matte.dtype == np.float32
    assert 0.0 <= matte.min() <= matte.max() <= 1.0
    assert matte[:, :20].max() == 0.0  # outside the padded box
    assert matte[40:100, 30:60].std() > 0.0


# ----------------------------------------------------------------------------------- SAM2


def _save_sam2(root: Path) -> None:
    bb = transformers.Sam2HieraDetConfig(
        hidden_size=16, image_size=[256, 256], blocks_per_stage=[1, 2, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[8, 4, 4, 2], global_attention_blocks=[4],
        window_positional_embedding_background_size=[4, 4])
    vision = transformers.Sam2VisionConfig(
        backbone_config=bb, backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]], fpn_hidden_size=32)
    config = transformers.Sam2Config(
        vision_config=vision,
        prompt_encoder_config=transformers.Sam2PromptEncoderConfig(
            hidden_size=32, image_size=256, patch_size=16),
        mask_decoder_config=transformers.Sam2MaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32))
    torch.manual_seed(0)
    transformers.Sam2Model(config).save_pretrained(root / "sam2")


def _coarse() -> np.ndarray:
    matte = np.zeros((120, 90), np.float32)
    matte[30:110, 25:65] = 1.0
    return matte


def test_sam2_segments_from_box_point_and_mask_prompts(tmp_path: Path) -> None:
    from models.refine.sam2 import Sam2Refiner

    _save_sam2(tmp_path)
    engine = Sam2Refiner(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    rgb = np.asarray(_picture())
    mask = engine.segment(rgb, _coarse(), (25, 30, 65, 110))
    assert mask.shape == (120, 90)
    assert 0.0 <= mask.min() <= mask.max() <= 1.0
    refined = engine.refine(_picture(), _coarse(), (25, 30, 65, 110))
    assert refined.shape == (120, 90)
    assert 0.0 <= refined.min() <= refined.max() <= 1.0


def test_refiner_chain_uses_sam2_when_weights_exist(tmp_path: Path) -> None:
    from models.refine.sam2 import Sam2Refiner
    from pipelines.image.portrait import Person, refine

    _save_sam2(tmp_path)
    chain = FallbackChain("refiner", [Sam2Refiner(EngineSettings(models_dir=tmp_path,
                                                                 device="cpu")),
                                      ClosedFormRefiner()])
    person = Person(0, (25, 30, 65, 110), 0.9, None, None, "face")
    _, report = refine(_picture(), _coarse(), [person], chain)
    assert report.operation == "matte_refinement"
    assert report.method == "sam2"
    assert report.fallback_used is False


def test_sam2_without_weights_falls_back_and_says_so(tmp_path: Path) -> None:
    from models.refine.sam2 import Sam2Refiner
    from pipelines.image.portrait import Person, refine

    chain = FallbackChain("refiner", [Sam2Refiner(EngineSettings(models_dir=tmp_path)),
                                      ClosedFormRefiner()])
    person = Person(0, (25, 30, 65, 110), 0.9, None, None, "face")
    _, report = refine(_picture(), _coarse(), [person], chain)
    assert report.method == "closed_form"
    assert report.fallback_used is True
    assert "SAM2" in report.details["note"]
    assert report.details["attempts"][0]["outcome"] == "skipped"


# -------------------------------------------------------------------------------- BiRefNet

_CONFIG_CODE = '''
from transformers import PretrainedConfig


class TinyBiRefNetConfig(PretrainedConfig):
    model_type = "tiny_birefnet"

    def __init__(self, channels=4, **kwargs):
        self.channels = channels
        super().__init__(**kwargs)
'''

_MODEL_CODE = '''
import torch
from transformers import PreTrainedModel

from .configuration_tiny import TinyBiRefNetConfig


class TinyBiRefNet(PreTrainedModel):
    """Stands in for BiRefNet's remote code: a list of logits maps, last is the finest."""

    config_class = TinyBiRefNetConfig

    def __init__(self, config):
        super().__init__(config)
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)
        self.post_init()

    def forward(self, x):
        coarse = self.conv(torch.nn.functional.avg_pool2d(x, 4))
        return [coarse, self.conv(x)]
'''


def _save_remote_code_model(root: Path, post_init: bool = True) -> None:
    """A checkpoint folder like BiRefNet's: its modelling code ships beside the weights.
    ``post_init=False``: the code skips ``post_init()``, as BiRefNet's (written for
    transformers 4) does."""
    import importlib.util
    import sys

    folder = root / "birefnet"
    folder.mkdir(parents=True)
    (folder / "configuration_tiny.py").write_text(textwrap.dedent(_CONFIG_CODE))
    (folder / "modeling_tiny.py").write_text(textwrap.dedent(_MODEL_CODE))
    (folder / "__init__.py").write_text("")
    spec = importlib.util.spec_from_file_location(
        "tinybiref", folder / "__init__.py", submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules["tinybiref"] = package
    try:
        from tinybiref.modeling_tiny import TinyBiRefNet, TinyBiRefNetConfig  # type: ignore

        torch.manual_seed(0)
        TinyBiRefNet(TinyBiRefNetConfig()).save_pretrained(folder)
    finally:
        for name in [n for n in sys.modules if n.startswith("tinybiref")]:
            del sys.modules[name]
    (folder / "__init__.py").unlink()
    if not post_init:
        code = (folder / "modeling_tiny.py").read_text()
        (folder / "modeling_tiny.py").write_text(code.replace("        self.post_init()\n", ""))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_tiny.TinyBiRefNetConfig",
                          "AutoModelForImageSegmentation": "modeling_tiny.TinyBiRefNet"}
    (folder / "config.json").write_text(json.dumps(config))


def test_birefnet_loads_remote_code_from_models_dir(tmp_path: Path) -> None:
    from models.cutout.birefnet import BiRefNetCutout

    _save_remote_code_model(tmp_path)
    engine = BiRefNetCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    matte = engine.cutout(_picture(), box=(25, 30, 65, 110))
    assert matte.shape == (120, 90)
    assert 0.0 <= matte.min() <= matte.max() <= 1.0
    assert matte[40:100, 30:60].std() > 0.0


def test_birefnet_code_that_skips_post_init_loads_on_transformers_5(tmp_path: Path) -> None:
    """transformers 5 reads ``all_tied_weights_keys`` (set by ``post_init()``) while loading;
    BiRefNet's hub code never calls it. The engine's shim does."""
    from models.cutout.birefnet import BiRefNetCutout

    _save_remote_code_model(tmp_path, post_init=False)
    assert "post_init" not in (tmp_path / "birefnet" / "modeling_tiny.py").read_text()
    engine = BiRefNetCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    assert engine.available()[0]
    matte = engine.cutout(_picture(), box=(25, 30, 65, 110))
    assert matte[40:100, 30:60].std() > 0.0


def test_birefnet_code_needing_missing_packages_is_not_ready(tmp_path: Path) -> None:
    from models.cutout.birefnet import BiRefNetCutout

    _save_remote_code_model(tmp_path)
    code = tmp_path / "birefnet" / "modeling_tiny.py"
    code.write_text("import no_such_package_xyz\nfrom .configuration_tiny import X\n"
                    + code.read_text())
    ok, why = BiRefNetCutout(EngineSettings(models_dir=tmp_path, device="cpu")).available()
    assert not ok
    assert "no_such_package_xyz" in why
    assert "configuration_tiny" not in why  # its own relative imports are not packages


def test_birefnet_unavailable_without_weights(tmp_path: Path) -> None:
    from models.cutout.birefnet import BiRefNetCutout

    assert not BiRefNetCutout(EngineSettings(models_dir=tmp_path)).available()[0]


def test_weights_downloaded_in_the_background_are_picked_up_without_restart(
        tmp_path: Path, monkeypatch) -> None:
    """The first cutout falls back and says 'downloading'; once the manager has verified the
    files the same engine object uses them."""
    from models.catalog import CATALOG
    from models.cutout.mediapipe import MediapipeCutout
    from models.cutout.segformer import SegformerCutout
    from models.downloads import manager_for
    from tests.stubs.hub import HubStub

    _save_segformer(tmp_path / "built", CLOTHES_LABELS, "Hair")
    files = {p.name: p.read_bytes() for p in (tmp_path / "built" / "segformer").iterdir()}
    settings = EngineSettings(models_dir=tmp_path / "models", allow_downloads=True,
                              device="cpu", request_timeout=10)
    chain = FallbackChain("cutout", [SegformerCutout(settings), MediapipeCutout()])
    with HubStub() as hub:
        hub.add_repo(CATALOG["segformer"].repo_id, files)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        first = chain.run(lambda e: e.cutout(_picture()))
        assert first.backend == "mediapipe"
        assert first.attempts[0].reason.startswith("downloading")
        assert manager_for(settings).state("segformer").finished.wait(30)
    second = chain.run(lambda e: e.cutout(_picture()))
    assert second.backend == "segformer"
    assert np.allclose(second.value, 1.0, atol=0.01)  # the served weights: all hair


# ------------------------------------------------------------------- BiRefNet as ONNX


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, value: bytes | int | str) -> bytes:
    """One protobuf field: varint for ints, length-delimited for bytes and strings."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, dims: list[int]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))


def _onnx_channel_sum(size: int) -> bytes:
    """A ModelProto written field by field (no onnx package here): logits = sum of the three
    normalised channels, (1, 3, S, S) -> (1, 1, S, S), the released export's I/O contract."""
    node = (_field(1, "input_image") + _field(2, "output_image") + _field(4, "ReduceSum")
            + _field(5, _field(1, "axes") + _field(8, 1) + _field(20, 7))
            + _field(5, _field(1, "keepdims") + _field(3, 1) + _field(20, 2)))
    graph = (_field(1, node) + _field(2, "g")
             + _field(11, _value_info("input_image", [1, 3, size, size]))
             + _field(12, _value_info("output_image", [1, 1, size, size])))
    return _field(1, 7) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 11))


def test_birefnet_runs_the_released_onnx_form_with_onnxruntime(tmp_path: Path) -> None:
    from models.cutout.birefnet import INPUT_SIZE, BiRefNetCutout
    from models.hf import IMAGENET_MEAN, IMAGENET_STD

    folder = tmp_path / "birefnet"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(_onnx_channel_sum(INPUT_SIZE))
    engine = BiRefNetCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
    ok, why = engine.available()
    assert ok
    assert "ONNX" in why
    rgb = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    rgb[:, INPUT_SIZE // 2:] = 255
    matte = engine.predict(rgb)
    expected = 1 / (1 + np.exp(-((np.array([0.0, 1.0])[:, None] - IMAGENET_MEAN)
                                 / IMAGENET_STD).sum(axis=1)))
    assert matte[10, 10] == pytest.approx(expected[0], abs=1e-4)  # black: ImageNet-normalised
    assert matte[10, -10] == pytest.approx(expected[1], abs=1e-4)  # white
    picture = _picture()
    assert engine.cutout(picture, box=(25, 30, 65, 110)).shape == (120, 90)
    from models.downloads import manager_for

    assert manager_for(engine.settings).availability("birefnet")[0]  # the Models panel agrees


def test_birefnet_broken_onnx_falls_back_with_the_reason(tmp_path: Path) -> None:
    from models.cutout.birefnet import BiRefNetCutout
    from models.cutout.mediapipe import MediapipeCutout

    (tmp_path / "birefnet").mkdir()
    (tmp_path / "birefnet" / "model.onnx").write_bytes(b"not a model")
    engine = BiRefNetCutout(EngineSettings(models_dir=tmp_path))
    chain = FallbackChain("cutout", [engine, MediapipeCutout()])
    result = chain.run(lambda e: e.cutout(_picture()))
    assert result.backend == "mediapipe"
    assert "could not load" in result.attempts[0].reason
    assert chain.inventory()[0]["available"] is False  # the Engines panel no longer says ready
