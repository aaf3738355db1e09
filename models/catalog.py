"""The neural engines' weights: what each needs, where it comes from, under which licence.

One entry per engine, the single source for the model manager (``python -m app.models``), the
Models panel, ``/health`` and the engines' own availability checks, so they cannot disagree
about which files make an engine complete. Sizes are the released files' approximate sizes
(the exact size and sha256 are recorded when a file is downloaded or verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.base import EngineSettings


@dataclass(frozen=True)
class WeightFile:
    """One file of a checkpoint: its path in the hub repository and under the engine's folder."""

    remote: str
    local: str
    approx_mb: float
    required: bool = True  # False: downloaded too, but an engine can be complete without it
    alternatives: tuple[str, ...] = ()  # other names that stand for it (an older save format)

    def present(self, folder: Path) -> bool:
        return any((folder / n).is_file() for n in (self.local, *self.alternatives))


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the engine's registry name
    title: str
    repo_id: str  # Hugging Face Hub repository the files come from
    subdir: tuple[str, ...]  # folder under the models dir
    files: tuple[WeightFile, ...]
    licence: str
    commercial_use: bool
    licence_note: str
    source: str  # the original project
    revision: str = "main"

    @property
    def approx_mb(self) -> float:
        return sum(f.approx_mb for f in self.files)

    def folder(self, settings: EngineSettings) -> Path | None:
        return settings.weights_path(*self.subdir)

    def paths(self, settings: EngineSettings) -> list[Path] | None:
        folder = self.folder(settings)
        if folder is None:
            return None
        return [folder / n for f in self.files for n in (f.local, *f.alternatives)]

    def missing(self, settings: EngineSettings) -> list[str]:
        """The local names of required files not on disk (all when there is no models dir)."""
        folder = self.folder(settings)
        needed = [f for f in self.files if f.required]
        if folder is None:
            return [f.local for f in needed]
        return [f.local for f in needed if not f.present(folder)]


CATALOG: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        name="openvoice", title="OpenVoice v2 tone-colour converter",
        repo_id="myshell-ai/OpenVoiceV2", subdir=("openvoice_v2", "converter"),
        files=(WeightFile("converter/config.json", "config.json", 0.002),
               WeightFile("converter/checkpoint.pth", "checkpoint.pth", 131.3)),
        licence="MIT", commercial_use=True,
        licence_note="MIT: free for commercial and non-commercial use.",
        source="https://github.com/myshell-ai/OpenVoice"),
    ModelSpec(
        name="wav2lip", title="Wav2Lip GAN lip-sync",
        repo_id="camenduru/Wav2Lip", subdir=("wav2lip",),
        files=(WeightFile("checkpoints/wav2lip_gan.pth", "wav2lip_gan.pth", 435.8,
                          alternatives=("wav2lip.pth",)),),
        licence="research / personal use only", commercial_use=False,
        licence_note=("NON-COMMERCIAL: the Wav2Lip authors release these weights for "
                      "personal, research and non-commercial use only (trained on LRS2); "
                      "commercial use needs a licence from Sync Labs."),
        source="https://github.com/Rudrabha/Wav2Lip"),
    ModelSpec(
        name="birefnet", title="BiRefNet lite (Swin-T) person cutout",
        repo_id="ZhengPeng7/BiRefNet_lite", subdir=("birefnet",),
        files=(WeightFile("config.json", "config.json", 0.001, required=False),
               WeightFile("BiRefNet_config.py", "BiRefNet_config.py", 0.001, required=False),
               WeightFile("birefnet.py", "birefnet.py", 0.1, required=False),
               # the released ONNX export stands for the whole checkpoint (see birefnet.py)
               WeightFile("model.safetensors", "model.safetensors", 178.7,
                          alternatives=("pytorch_model.bin", "model.onnx", "onnx/model.onnx"))),
        licence="MIT", commercial_use=True,
        licence_note="MIT: free for commercial and non-commercial use.",
        source="https://github.com/ZhengPeng7/BiRefNet"),
    ModelSpec(
        name="segformer", title="SegFormer-B2 human parsing (clothes)",
        repo_id="mattmdjaga/segformer_b2_clothes", subdir=("segformer",),
        files=(WeightFile("config.json", "config.json", 0.002),
               WeightFile("model.safetensors", "model.safetensors", 109.5,
                          alternatives=("pytorch_model.bin",))),
        licence="MIT", commercial_use=True,
        licence_note=("MIT (model card); trained on the ATR dataset, whose own terms are "
                      "for research."),
        source="https://huggingface.co/mattmdjaga/segformer_b2_clothes"),
    ModelSpec(
        name="sam2", title="SAM 2.1 Hiera tiny",
        repo_id="facebook/sam2.1-hiera-tiny", subdir=("sam2",),
        files=(WeightFile("config.json", "config.json", 0.005),
               WeightFile("model.safetensors", "model.safetensors", 155.9,
                          alternatives=("pytorch_model.bin",))),
        licence="Apache-2.0", commercial_use=True,
        licence_note="Apache-2.0: free for commercial and non-commercial use.",
        source="https://github.com/facebookresearch/sam2"),
)}


def spec(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(CATALOG)
        raise KeyError(f"unknown model '{name}' (known: {known})") from None
