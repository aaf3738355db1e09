"""OpenVoice v2 tone-colour converter, written here in torch (the architecture only).

OpenVoice v2's converter is a VITS-style model without a text encoder: a reference encoder
turns a linear spectrogram into a 256-d tone-colour vector; a posterior encoder maps the
source speech to a latent; a normalising flow strips the source tone colour
(``flow(z, g_src)``) and re-applies the target's (``flow⁻¹(z_p, g_tgt)``); a HiFi-GAN
generator renders 22.05 kHz audio. Module and parameter names follow the published
checkpoint (``converter/checkpoint.pth`` + ``converter/config.json`` of
``myshell-ai/OpenVoiceV2``) so it loads with ``strict=True``.

Weights come from ``STUDIO_MODELS_DIR/openvoice_v2/converter/`` (the model manager fetches
them there in the background when ``STUDIO_ALLOW_DOWNLOADS=1``; never inside a job). No weights ship in any wheel, so
by default this engine reports itself unavailable and the chain uses voice matching.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Audio, EngineSettings, LazyModel, VoiceTarget, module_available
from models.catalog import ModelSpec, WeightFile, Words
from models.errors import BackendUnavailable
from models.gpu import drop, gpu_task, keep, live
from models.hf import LoadFailure
from models.speech.dsp import resample_array

SUBDIR = ("openvoice_v2", "converter")

WEIGHTS = ModelSpec(
    name="openvoice", title="OpenVoice v2 tone-colour converter",
    what=Words("voice conversion", "声の変換"),
    repo_id="myshell-ai/OpenVoiceV2", subdir=SUBDIR,
    files=(WeightFile("converter/config.json", "config.json", 0.002),
           WeightFile("converter/checkpoint.pth", "checkpoint.pth", 131.3)),
    licence="MIT", commercial_use=True,
    licence_note=Words("MIT: free for commercial and non-commercial use.",
                       "MIT: 商用・非商用とも自由に使えます。"),
    source="https://github.com/myshell-ai/OpenVoice")

DEFAULT_CONFIG: dict[str, Any] = {
    "_version_": "v2",
    "data": {"sampling_rate": 22050, "filter_length": 1024, "hop_length": 256,
             "win_length": 1024, "n_speakers": 0},
    "model": {"zero_g": True, "inter_channels": 192, "hidden_channels": 192,
              "filter_channels": 768, "n_heads": 2, "n_layers": 6, "kernel_size": 3,
              "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
              "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
              "upsample_rates": [8, 8, 2, 2], "upsample_initial_channel": 512,
              "upsample_kernel_sizes": [16, 16, 4, 4], "gin_channels": 256},
}


def build_model(config: dict[str, Any]) -> Any:
    """The converter network for ``config`` (OpenVoice's converter/config.json layout)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's weight_norm deprecation notice
        from models.voice.openvoice_net import build_converter

        return build_converter(config)


def spectrogram(samples: np.ndarray, data: dict[str, Any]) -> Any:
    """Linear magnitude spectrogram as OpenVoice computes it (reflect pad, no centring)."""
    import torch

    n_fft, hop, win = data["filter_length"], data["hop_length"], data["win_length"]
    y = torch.from_numpy(np.clip(samples, -1, 1).astype(np.float32))[None]
    pad = (n_fft - hop) // 2
    y = torch.nn.functional.pad(y[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(y, n_fft, hop_length=hop, win_length=win,
                      window=torch.hann_window(win), center=False, return_complex=True)
    return torch.sqrt(spec.real**2 + spec.imag**2 + 1e-6)


class _Loaded:
    def __init__(self, config: dict[str, Any], checkpoint: Path, device: str = "cpu") -> None:
        import torch

        self.config = config
        self.device = device
        self.model = build_model(config)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state.get("model", state), strict=True)
        self.model.to(device).eval()
        self.lock = threading.Lock()

    def tone_colour(self, audio: Audio, window_s: float = 10.0) -> Any:
        """Average tone-colour vector over ~10 s windows of ``audio`` ([1, gin, 1])."""
        import torch

        data = self.config["data"]
        rate = data["sampling_rate"]
        samples = resample_array(audio.samples, audio.sample_rate, rate)
        step = int(window_s * rate)
        vectors = []
        with torch.no_grad():
            for start in range(0, max(1, len(samples) - rate // 2), step):
                piece = samples[start:start + step]
                if len(piece) < data["filter_length"] * 2:
                    continue
                spec = spectrogram(piece, data).to(self.device)
                vectors.append(self.model.ref_enc(spec.transpose(1, 2)))
        if not vectors:
            raise BackendUnavailable("Audio too short for OpenVoice's tone colour.",
                                     code="VOICE_CONVERSION_UNAVAILABLE",
                                     message_ja="OpenVoice には音声が短すぎます。")
        return torch.stack(vectors).mean(0).unsqueeze(-1)

    def convert(self, audio: Audio, target: Any, tau: float = 0.3) -> Audio:
        import torch

        data = self.config["data"]
        rate = data["sampling_rate"]
        samples = resample_array(audio.samples, audio.sample_rate, rate)
        with self.lock, torch.no_grad():
            source = self.tone_colour(audio)
            spec = spectrogram(samples, data).to(self.device)
            lengths = torch.LongTensor([spec.size(-1)]).to(self.device)
            out = self.model.voice_conversion(spec, lengths, source, target.to(self.device),
                                              tau=tau)
        wave = out[0, 0].float().cpu().numpy().astype(np.float32)
        converted = resample_array(wave, rate, audio.sample_rate)
        n = len(audio.samples)
        converted = np.pad(converted, (0, max(0, n - len(converted))))[:n]
        return Audio(converted, audio.sample_rate)


class OpenVoiceConverter:
    """The neural voice converter: available only when its checkpoint is on disk (or may be
    downloaded). ``convert`` takes the profile's reference clip as the target voice."""

    name = "openvoice"
    method = "OpenVoice v2 tone-colour conversion"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._model: LazyModel[_Loaded] = LazyModel(self._load)
        self.key = f"openvoice:{id(self)}"  # where the GPU functions find the model
        self._targets: dict[str, np.ndarray] = {}
        self._failure = LoadFailure()

    def _local_dir(self) -> Path | None:
        return self.settings.weights_path(*SUBDIR)

    def _files(self) -> tuple[Path, Path] | None:
        folder = self._local_dir()
        if folder and (folder / "checkpoint.pth").is_file() and (folder / "config.json").is_file():
            return folder / "config.json", folder / "checkpoint.pth"
        return None

    def available(self) -> tuple[bool, str]:
        from models.downloads import manager_for

        ok, why = module_available("torch")
        if not ok:
            return False, why
        ok, why = manager_for(self.settings).availability(self.name)
        failed = self._failure.reason(self._files() or ()) if ok else None
        return (False, failed) if failed else (ok, why)

    def _load(self) -> _Loaded:
        from models.gpu import torch_device

        files = self._files()
        if files is None:
            raise BackendUnavailable(self.available()[1], code="VOICE_CONVERSION_UNAVAILABLE",
                                     message_ja="OpenVoice v2 のチェックポイントがありません。")
        config_file, checkpoint = files
        loaded = self._failure.guard(
            files, f"OpenVoice v2 could not load {checkpoint}",
            lambda: _Loaded(json.loads(config_file.read_text("utf-8")), checkpoint,
                            torch_device(self.settings.device)),
            code="VOICE_CONVERSION_UNAVAILABLE", message_ja="OpenVoice v2 を読み込めません。")
        keep(self.key, loaded)
        return loaded

    def close(self) -> None:
        drop(self.key)
        self._model.clear()
        self._targets.clear()

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        self._model.get()
        key = target.key
        if key not in self._targets:
            self._targets[key] = openvoice_tone_colour(self.key, target.reference.samples,
                                                       target.reference.sample_rate)
        samples = openvoice_convert(self.key, audio.samples, audio.sample_rate,
                                    self._targets[key])
        return Audio(samples, audio.sample_rate)


# Module-level GPU functions given the model's key (models.gpu.keep), so that ZeroGPU pickles
# only a key and arrays, never the engine or the model.


@gpu_task()
def openvoice_tone_colour(key: str, samples: np.ndarray, rate: int) -> np.ndarray:
    """The tone-colour vector ([1, gin, 1]) of a reference clip."""
    loaded, _lock = live(key)
    vector: np.ndarray = loaded.tone_colour(Audio(samples, rate)).float().cpu().numpy()
    return vector


@gpu_task()
def openvoice_convert(key: str, samples: np.ndarray, rate: int, target: np.ndarray) -> np.ndarray:
    """``samples`` re-voiced with the ``target`` tone colour, same rate and length."""
    import torch

    loaded, _lock = live(key)
    converted: Audio = loaded.convert(Audio(samples, rate), torch.from_numpy(target))
    return converted.samples
