"""Person cutout with a SegFormer human parser (transformers), when its weights are present.

Any ``SegformerForSemanticSegmentation`` human-parsing checkpoint works (default:
``mattmdjaga/segformer_b2_clothes``, 18 labels). The person is the sum of the probabilities of
the labels that are part of a person, found by name in ``config.id2label`` (hair, face,
upper/lower clothes, arms, legs, shoes, hat, scarf, ...). Not ``1 - P(background)``: that
counts a bag, or any other class such a parser knows, as the person.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from models.base import EngineSettings
from models.catalog import ModelSpec, WeightFile, Words
from models.errors import BackendUnavailable
from models.gpu import gpu_task, live
from models.hf import HubModel, to_pixel_values
from models.imaging import matte_in_box

INPUT_SIZE = 512

WEIGHTS = ModelSpec(
    name="segformer", title="SegFormer-B2 human parsing (clothes)",
    what=Words("human parsing", "人体の部位分け"),
    repo_id="mattmdjaga/segformer_b2_clothes", subdir=("segformer",),
    files=(WeightFile("config.json", "config.json", 0.002),
           WeightFile("model.safetensors", "model.safetensors", 109.5,
                      alternatives=("pytorch_model.bin",))),
    licence="MIT", commercial_use=True,
    licence_note=Words("MIT (model card); trained on the ATR dataset, whose own terms are for "
                       "research.",
                       "MIT（モデルカード）。学習に使った ATR データセットの条件は研究用です。"),
    source="https://huggingface.co/mattmdjaga/segformer_b2_clothes")


class SegformerCutout:
    name = "segformer"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model = HubModel(self.settings, self.name, "SegFormer",
                               "IMAGE_SEGMENTER_UNAVAILABLE", _load_weights, half=True)

    def available(self) -> tuple[bool, str]:
        return self._model.available()

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        self._model.get()
        return segformer_person(self._model.key, rgb)

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        return matte_in_box(image, box, self.person_probability)

    def close(self) -> None:
        self._model.clear()


@gpu_task()
def segformer_person(key: str, rgb: np.ndarray) -> np.ndarray:
    """P(person) per pixel of ``rgb`` with the model kept under ``key`` (module-level, so
    ZeroGPU pickles only a key and an image)."""
    import torch

    (model, device), lock = live(key)
    person = person_labels(model.config.id2label)
    h, w = rgb.shape[:2]
    pixels = to_pixel_values(rgb, (INPUT_SIZE, INPUT_SIZE), device)
    dtype = next(model.parameters()).dtype
    with lock, torch.inference_mode():
        logits = model(pixel_values=pixels.to(dtype)).logits.float()
        logits = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear",
                                                 align_corners=False)
        probs = logits.softmax(dim=1)[0, person].sum(dim=0)
    matte: np.ndarray = np.clip(probs.cpu().numpy(), 0.0, 1.0).astype(np.float32)
    return matte


# words of human-parsing labels that are part of the person (ATR, LIP, CIHP, Pascal-Person)
PERSON_WORDS = ("person", "human", "hair", "face", "head", "neck", "torso", "skin", "body",
                "arm", "hand", "glove", "leg", "foot", "feet", "shoe", "sock", "hat", "cap",
                "sunglass", "glasses", "scarf", "upper", "lower", "clothes", "coat", "jacket",
                "shirt", "dress", "skirt", "pants", "trousers", "jumpsuit", "belt")
NOT_PERSON_WORDS = ("background", "bag", "umbrella")


def person_labels(id2label: dict[Any, Any]) -> list[int]:
    """Indices of the labels that make up a person; raises when a checkpoint has none."""
    out = []
    for key, value in id2label.items():
        words = re.findall(r"[a-z]+", str(value).lower())
        if any(w.startswith(n) for w in words for n in NOT_PERSON_WORDS):
            continue
        if any(w.startswith(p) for w in words for p in PERSON_WORDS):
            out.append(int(key))
    if not out:
        raise BackendUnavailable(
            f"SegFormer checkpoint has no person labels ({sorted(id2label.values())[:6]} ...)",
            code="IMAGE_SEGMENTER_UNAVAILABLE",
            message_ja="SegFormer のチェックポイントに人物のラベルがありません。")
    return sorted(out)


def _load_weights(source: str) -> Any:
    from transformers import SegformerForSemanticSegmentation

    return SegformerForSemanticSegmentation.from_pretrained(source)
