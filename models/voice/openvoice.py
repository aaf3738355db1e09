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

from models.base import Audio, EngineSettings, LazyModel, module_available
from models.errors import BackendUnavailable
from models.gpu import drop, gpu_task, keep, live
from models.hf import LoadFailure
from models.speech.dsp import resample_array

SUBDIR = ("openvoice_v2", "converter")
LRELU_SLOPE = 0.1

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
        return _build(config)


def _build(config: dict[str, Any]) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812
    from torch.nn.utils import weight_norm

    def pad_for(kernel: int, dilation: int = 1) -> int:
        return (kernel * dilation - dilation) // 2

    def seq_mask(lengths: Any, size: int) -> Any:
        return (torch.arange(size, device=lengths.device)[None, :] < lengths[:, None])

    class WN(nn.Module):
        """Gated dilated convolutions with a global condition (WaveNet-like)."""

        def __init__(self, hidden: int, kernel: int, dilation_rate: int, layers: int,
                     gin: int = 0) -> None:
            super().__init__()
            self.hidden, self.layers = hidden, layers
            self.in_layers = nn.ModuleList()
            self.res_skip_layers = nn.ModuleList()
            if gin:
                self.cond_layer = weight_norm(nn.Conv1d(gin, 2 * hidden * layers, 1))
            for i in range(layers):
                d = dilation_rate**i
                self.in_layers.append(weight_norm(
                    nn.Conv1d(hidden, 2 * hidden, kernel, dilation=d, padding=pad_for(kernel, d))))
                out = 2 * hidden if i < layers - 1 else hidden
                self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden, out, 1)))

        def forward(self, x: Any, mask: Any, g: Any = None) -> Any:
            output = torch.zeros_like(x)
            cond = self.cond_layer(g) if g is not None else None
            for i in range(self.layers):
                h = self.in_layers[i](x)
                if cond is not None:
                    h = h + cond[:, i * 2 * self.hidden:(i + 1) * 2 * self.hidden]
                acts = torch.tanh(h[:, :self.hidden]) * torch.sigmoid(h[:, self.hidden:])
                rs = self.res_skip_layers[i](acts)
                if i < self.layers - 1:
                    x = (x + rs[:, :self.hidden]) * mask
                    output = output + rs[:, self.hidden:]
                else:
                    output = output + rs
            return output * mask

    class PosteriorEncoder(nn.Module):
        def __init__(self, cin: int, cout: int, hidden: int, gin: int) -> None:
            super().__init__()
            self.cout = cout
            self.pre = nn.Conv1d(cin, hidden, 1)
            self.enc = WN(hidden, 5, 1, 16, gin)
            self.proj = nn.Conv1d(hidden, cout * 2, 1)

        def forward(self, x: Any, lengths: Any, g: Any, tau: float) -> tuple[Any, Any]:
            mask = seq_mask(lengths, x.size(2)).unsqueeze(1).to(x.dtype)
            h = self.enc(self.pre(x) * mask, mask, g=g)
            m, logs = torch.split(self.proj(h) * mask, self.cout, dim=1)
            return (m + torch.randn_like(m) * tau * torch.exp(logs)) * mask, mask

    class CouplingLayer(nn.Module):
        """Mean-only affine coupling: half the channels shift the other half."""

        def __init__(self, channels: int, hidden: int, gin: int) -> None:
            super().__init__()
            self.half = channels // 2
            self.pre = nn.Conv1d(self.half, hidden, 1)
            self.enc = WN(hidden, 5, 1, 4, gin)
            self.post = nn.Conv1d(hidden, self.half, 1)

        def forward(self, x: Any, mask: Any, g: Any, reverse: bool) -> Any:
            x0, x1 = torch.split(x, [self.half, self.half], 1)
            shift = self.post(self.enc(self.pre(x0) * mask, mask, g=g)) * mask
            x1 = (x1 - shift) * mask if reverse else shift + x1 * mask
            return torch.cat([x0, x1], 1)

    class Flip(nn.Module):
        def forward(self, x: Any, *args: Any, **kw: Any) -> Any:
            return torch.flip(x, [1])

    class Flow(nn.Module):
        def __init__(self, channels: int, hidden: int, gin: int, n_flows: int = 4) -> None:
            super().__init__()
            self.flows = nn.ModuleList()
            for _ in range(n_flows):
                self.flows.append(CouplingLayer(channels, hidden, gin))
                self.flows.append(Flip())

        def forward(self, x: Any, mask: Any, g: Any, reverse: bool = False) -> Any:
            for flow in (reversed(self.flows) if reverse else self.flows):
                x = flow(x, mask, g, reverse)
            return x

    class ResBlock1(nn.Module):
        def __init__(self, ch: int, kernel: int, dilations: list[int]) -> None:
            super().__init__()
            self.convs1 = nn.ModuleList([weight_norm(nn.Conv1d(
                ch, ch, kernel, 1, dilation=d, padding=pad_for(kernel, d))) for d in dilations])
            self.convs2 = nn.ModuleList([weight_norm(nn.Conv1d(
                ch, ch, kernel, 1, dilation=1, padding=pad_for(kernel))) for _ in dilations])
            for conv in [*self.convs1, *self.convs2]:
                conv.weight_v.data.normal_(0.0, 0.01)

        def forward(self, x: Any) -> Any:
            for c1, c2 in zip(self.convs1, self.convs2, strict=True):
                x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            return x

    class ResBlock2(nn.Module):
        def __init__(self, ch: int, kernel: int, dilations: list[int]) -> None:
            super().__init__()
            self.convs = nn.ModuleList([weight_norm(nn.Conv1d(
                ch, ch, kernel, 1, dilation=d, padding=pad_for(kernel, d))) for d in dilations])

        def forward(self, x: Any) -> Any:
            for conv in self.convs:
                x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
            return x

    class Generator(nn.Module):
        """HiFi-GAN: upsample the latent to a waveform, with multi-receptive-field blocks."""

        def __init__(self, m: dict[str, Any]) -> None:
            super().__init__()
            ch0 = m["upsample_initial_channel"]
            self.kernels = len(m["resblock_kernel_sizes"])
            self.conv_pre = nn.Conv1d(m["inter_channels"], ch0, 7, 1, padding=3)
            block = ResBlock1 if str(m["resblock"]) == "1" else ResBlock2
            self.ups = nn.ModuleList()
            self.resblocks = nn.ModuleList()
            ch = ch0
            for i, (u, k) in enumerate(zip(m["upsample_rates"], m["upsample_kernel_sizes"],
                                           strict=True)):
                up = weight_norm(nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u,
                                                    padding=(k - u) // 2))
                up.weight_v.data.normal_(0.0, 0.01)
                self.ups.append(up)
                ch = ch0 // 2 ** (i + 1)
                for k2, d in zip(m["resblock_kernel_sizes"], m["resblock_dilation_sizes"],
                                 strict=True):
                    self.resblocks.append(block(ch, k2, d))
            self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
            if m.get("gin_channels"):
                self.cond = nn.Conv1d(m["gin_channels"], ch0, 1)

        def forward(self, x: Any, g: Any = None) -> Any:
            x = self.conv_pre(x)
            if g is not None:
                x = x + self.cond(g)
            for i, up in enumerate(self.ups):
                x = up(F.leaky_relu(x, LRELU_SLOPE))
                blocks = self.resblocks[i * self.kernels:(i + 1) * self.kernels]
                x = sum(b(x) for b in blocks) / self.kernels
            return torch.tanh(self.conv_post(F.leaky_relu(x)))

    class ReferenceEncoder(nn.Module):
        """Spectrogram frames -> tone-colour vector (6 strided 2-D convs, a GRU, a linear)."""

        def __init__(self, spec_channels: int, gin: int) -> None:
            super().__init__()
            self.spec_channels = spec_channels
            filters = [1, 32, 32, 64, 64, 128, 128]
            self.convs = nn.ModuleList([weight_norm(nn.Conv2d(
                filters[i], filters[i + 1], (3, 3), (2, 2), (1, 1))) for i in range(6)])
            width = spec_channels
            for _ in range(6):
                width = (width - 3 + 2) // 2 + 1
            self.gru = nn.GRU(128 * width, 128, batch_first=True)
            self.proj = nn.Linear(128, gin)
            self.layernorm = nn.LayerNorm(spec_channels)

        def forward(self, frames: Any) -> Any:
            out = self.layernorm(frames.view(frames.size(0), 1, -1, self.spec_channels))
            for conv in self.convs:
                out = F.relu(conv(out))
            out = out.transpose(1, 2).contiguous()
            out = out.view(out.size(0), out.size(1), -1)
            _, hidden = self.gru(out)
            return self.proj(hidden.squeeze(0))

    class ToneColorConverter(nn.Module):
        def __init__(self, cfg: dict[str, Any]) -> None:
            super().__init__()
            m = cfg["model"]
            spec_channels = cfg["data"]["filter_length"] // 2 + 1
            gin = m["gin_channels"]
            self.zero_g = bool(m.get("zero_g", False))
            self.dec = Generator(m)
            self.enc_q = PosteriorEncoder(spec_channels, m["inter_channels"],
                                          m["hidden_channels"], gin)
            self.flow = Flow(m["inter_channels"], m["hidden_channels"], gin)
            self.ref_enc = ReferenceEncoder(spec_channels, gin)

        def voice_conversion(self, spec: Any, lengths: Any, g_src: Any, g_tgt: Any,
                             tau: float = 0.3) -> Any:
            g_in = torch.zeros_like(g_src) if self.zero_g else g_src
            z, mask = self.enc_q(spec, lengths, g_in, tau)
            z_p = self.flow(z, mask, g_src)
            z_hat = self.flow(z_p, mask, g_tgt, reverse=True)
            g_out = torch.zeros_like(g_tgt) if self.zero_g else g_tgt
            return self.dec(z_hat * mask, g=g_out)

    return ToneColorConverter(config).eval()


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

    def convert(self, audio: Audio, profile: dict[str, Any], reference: Audio) -> Audio:
        self._model.get()
        key = f"{profile.get('id')}:{profile.get('updated_at')}"
        if key not in self._targets:
            self._targets[key] = openvoice_tone_colour(self.key, reference.samples,
                                                       reference.sample_rate)
        samples = openvoice_convert(self.key, audio.samples, audio.sample_rate,
                                    self._targets[key])
        return Audio(samples, audio.sample_rate)


# Module-level GPU functions given the model's key (models.gpu.keep), so that ZeroGPU pickles
# only a key and arrays, never the engine or the model.


@gpu_task()
def openvoice_tone_colour(key: str, samples: np.ndarray, rate: int) -> np.ndarray:
    """The tone-colour vector ([1, gin, 1]) of a reference clip."""
    loaded, _lock = live(key)
    return loaded.tone_colour(Audio(samples, rate)).float().cpu().numpy()


@gpu_task()
def openvoice_convert(key: str, samples: np.ndarray, rate: int, target: np.ndarray) -> np.ndarray:
    """``samples`` re-voiced with the ``target`` tone colour, same rate and length."""
    import torch

    loaded, _lock = live(key)
    return loaded.convert(Audio(samples, rate), torch.from_numpy(target)).samples
