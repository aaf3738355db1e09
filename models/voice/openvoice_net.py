"""The OpenVoice v2 tone-colour converter network in torch (architecture only, no weights).

Module and parameter names follow the published checkpoint (``converter/checkpoint.pth`` of
``myshell-ai/OpenVoiceV2``) so it loads with ``strict=True``; imported only when the
converter builds its model, since importing torch costs seconds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import weight_norm

LRELU_SLOPE = 0.1


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
        cond = self.cond_layer(g) if g is not None and self.cond_layer is not None else None
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
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden, 1)
        self.enc = WN(hidden, 5, 1, 4, gin)
        self.post = nn.Conv1d(hidden, self.half_channels, 1)

    def forward(self, x: Any, mask: Any, g: Any, reverse: bool) -> Any:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], 1)
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
            weight_v = up.weight_v
            assert isinstance(weight_v, torch.Tensor)
            weight_v.data.normal_(0.0, 0.01)
            self.ups.append(up)
            ch = ch0 // 2 ** (i + 1)
            for k2, d in zip(m["resblock_kernel_sizes"], m["resblock_dilation_sizes"],
                             strict=True):
                self.resblocks.append(block(ch, k2, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.cond: nn.Module | None = (
            nn.Conv1d(m["gin_channels"], ch0, 1) if m.get("gin_channels") else None)

    def forward(self, x: Any, g: Any = None) -> Any:
        x = self.conv_pre(x)
        if g is not None and self.cond is not None:
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


def build_converter(config: dict[str, Any]) -> ToneColorConverter:
    """The converter for ``config`` (OpenVoice's converter/config.json layout), in eval mode."""
    return ToneColorConverter(config).eval()
