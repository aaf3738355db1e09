"""Wav2Lip lip-sync (Prajwal et al., 2020), written here in torch, redrawing the mouth of the
built-in renderer's frames: head motion and blinks come from the built-in renderer, the lower
face from the network.

Weights: ``{models_dir}/wav2lip/wav2lip_gan.pth`` (or ``wav2lip.pth``), the original
checkpoints' layout (``{'state_dict': {'module.' + key: ...}, 'optimizer': ..., ...}``; bare
state dicts too); the model manager fetches it there when downloads are allowed (catalogue
entry ``wav2lip``: a community mirror of the release). Without weights the engine is
unavailable and the chain moves on. The weights are for NON-COMMERCIAL use only.

Audio: 16 kHz, pre-emphasis 0.97, 800-point STFT with hop 200 (80 mel frames per second),
80 mel bands 55-7600 Hz, dB normalised to [-4, 4]; each video frame sees 16 mel frames
starting at ``int(i * 80 / fps)``. Faces: 96x96 crops, the lower half masked, stacked with
the unmasked face (6 channels), in BGR order as the released network was trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from models.base import EngineSettings, LazyModel, ProgressFn, RenderRequest, no_progress
from models.catalog import ModelSpec, WeightFile, Words
from models.errors import BackendUnavailable
from models.gpu import gpu_task
from models.hf import LoadFailure

MEL_STEP = 16
MEL_FPS = 80.0
FACE = 96
CHECKPOINTS = ("wav2lip_gan.pth", "wav2lip.pth")

WEIGHTS = ModelSpec(
    name="wav2lip", title="Wav2Lip GAN lip-sync",
    what=Words("lip-sync", "口の動き"),
    repo_id="camenduru/Wav2Lip", subdir=("wav2lip",),
    files=(WeightFile("checkpoints/wav2lip_gan.pth", "wav2lip_gan.pth", 435.8,
                      alternatives=("wav2lip.pth",)),),
    licence="research / personal use only", commercial_use=False,
    licence_note=Words(
        "NON-COMMERCIAL: the Wav2Lip authors release these weights for personal, research and "
        "non-commercial use only (trained on LRS2); commercial use needs a licence from Sync "
        "Labs.",
        "非商用: Wav2Lip の作者はこの重みを個人・研究・非商用の利用に限って公開しています"
        "（LRS2 で学習）。商用利用には Sync Labs のライセンスが必要です。"),
    source="https://github.com/Rudrabha/Wav2Lip")


def build_model() -> Any:
    """The Wav2Lip generator, as in the original repository's ``models/wav2lip.py``."""
    import torch
    from torch import nn

    class Conv(nn.Module):
        def __init__(self, cin: int, cout: int, k: int, s: Any, p: int,
                     residual: bool = False) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout))
            self.act = nn.ReLU()
            self.residual = residual

        def forward(self, x: Any) -> Any:
            out = self.conv_block(x)
            if self.residual:
                out = out + x
            return self.act(out)

    class ConvT(nn.Module):
        def __init__(self, cin: int, cout: int, k: int, s: int, p: int, op: int = 0) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, k, s, p, op),
                                            nn.BatchNorm2d(cout))
            self.act = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.act(self.conv_block(x))

    def res(c: int) -> Any:
        return Conv(c, c, 3, 1, 1, residual=True)

    class Wav2Lip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            S = nn.Sequential
            self.face_encoder_blocks = nn.ModuleList([
                S(Conv(6, 16, 7, 1, 3)),
                S(Conv(16, 32, 3, 2, 1), res(32), res(32)),
                S(Conv(32, 64, 3, 2, 1), res(64), res(64), res(64)),
                S(Conv(64, 128, 3, 2, 1), res(128), res(128)),
                S(Conv(128, 256, 3, 2, 1), res(256), res(256)),
                S(Conv(256, 512, 3, 2, 1), res(512)),
                S(Conv(512, 512, 3, 1, 0), Conv(512, 512, 1, 1, 0)),
            ])
            self.audio_encoder = S(
                Conv(1, 32, 3, 1, 1), res(32), res(32),
                Conv(32, 64, 3, (3, 1), 1), res(64), res(64),
                Conv(64, 128, 3, 3, 1), res(128), res(128),
                Conv(128, 256, 3, (3, 2), 1), res(256),
                Conv(256, 512, 3, 1, 0), Conv(512, 512, 1, 1, 0))
            self.face_decoder_blocks = nn.ModuleList([
                S(Conv(512, 512, 1, 1, 0)),
                S(ConvT(1024, 512, 3, 1, 0), res(512)),
                S(ConvT(1024, 512, 3, 2, 1, 1), res(512), res(512)),
                S(ConvT(768, 384, 3, 2, 1, 1), res(384), res(384)),
                S(ConvT(512, 256, 3, 2, 1, 1), res(256), res(256)),
                S(ConvT(320, 128, 3, 2, 1, 1), res(128), res(128)),
                S(ConvT(160, 64, 3, 2, 1, 1), res(64), res(64)),
            ])
            self.output_block = S(Conv(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

        def forward(self, mels: Any, faces: Any) -> Any:
            """mels (B, 1, 80, 16), faces (B, 6, 96, 96) in [0, 1] -> (B, 3, 96, 96)."""
            x = self.audio_encoder(mels)
            feats = []
            f = faces
            for block in self.face_encoder_blocks:
                f = block(f)
                feats.append(f)
            for block in self.face_decoder_blocks:
                x = block(x)
                x = torch.cat((x, feats.pop()), dim=1)
            return self.output_block(x)

    return Wav2Lip()


def melspectrogram(samples: np.ndarray, rate: int) -> np.ndarray:
    """(80, T) normalised log-mel, Wav2Lip's ``audio.melspectrogram``."""
    import librosa
    from scipy.signal import lfilter

    if rate != 16000:
        samples = librosa.resample(samples.astype(np.float32), orig_sr=rate, target_sr=16000)
    wav = lfilter([1, -0.97], [1], samples)
    spec = np.abs(librosa.stft(y=wav, n_fft=800, hop_length=200, win_length=800))
    mel_basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    mel = 20 * np.log10(np.maximum(1e-5, mel_basis @ spec)) - 20
    scaled: np.ndarray = np.clip((2 * 4) * ((mel + 100) / 100) - 4, -4, 4).astype(np.float32)
    return scaled


def mel_windows(mel: np.ndarray, frames: int, fps: int) -> np.ndarray:
    """(frames, 80, 16): the 16 mel frames each video frame hears (edge-padded at the end)."""
    step = MEL_FPS / fps
    padded = np.pad(mel, ((0, 0), (0, MEL_STEP)), mode="edge")
    starts = np.minimum((np.arange(frames) * step).astype(int), mel.shape[1] - 1)
    return np.stack([padded[:, s:s + MEL_STEP] for s in starts])


def feather_mask(size: int, lower_only: bool = True) -> np.ndarray:
    """(size, size) weights for pasting the network's face back: 1 over the lower face,
    fading to 0 at the crop's edges and over the upper half (which the network did not
    redraw)."""
    ramp = np.clip(np.minimum(np.arange(size), size - 1 - np.arange(size)) / (0.12 * size), 0, 1)
    mask = np.outer(ramp, ramp)
    if lower_only:
        rows = np.clip((np.arange(size) - 0.45 * size) / (0.1 * size), 0, 1)
        mask *= rows[:, None]
    return mask.astype(np.float32)


class Wav2LipHead:
    """Engine ``wav2lip``: the built-in renderer's frames with a Wav2Lip mouth."""

    name = "wav2lip"

    def __init__(self, settings: EngineSettings | None = None, *, model: Any = None,
                 batch: int | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.batch = batch  # None: 16 on the CPU, what free GPU memory holds on CUDA
        self.key = f"wav2lip:{id(self)}"  # where redraw_faces finds the model
        self._model = LazyModel(
            lambda: self._keep(model if model is not None else self._load()))
        self._failure = LoadFailure()

    def checkpoint(self) -> Path | None:
        for name in CHECKPOINTS:
            path = self.settings.weights_path("wav2lip", name)
            if path is not None and path.is_file():
                return path
        return None

    def available(self) -> tuple[bool, str]:
        from models.base import module_available
        from models.downloads import manager_for

        ok, why = module_available("torch")
        if not ok:
            return ok, why
        if self._model.loaded:
            return True, "Wav2Lip loaded"
        ok, why = manager_for(self.settings).availability(self.name)
        failed = self._failure.reason([p for p in [self.checkpoint()] if p]) if ok else None
        return (False, failed) if failed else (ok, why)

    def _keep(self, model: Any) -> Any:
        from models.gpu import keep

        keep(self.key, model)
        return model

    def _load(self) -> Any:
        from models.gpu import half_precision, torch_device

        path = self.checkpoint()
        if path is None:
            raise BackendUnavailable(self.available()[1], code="VIDEO_WAV2LIP_UNAVAILABLE",
                                     message_ja="Wav2Lip のチェックポイントがありません。")

        def load() -> Any:
            device = torch_device(self.settings.device)
            model = load_checkpoint(path, device)
            # conv + batch norm + sigmoid: safe in float16
            return model.half() if half_precision(device) else model

        return self._failure.guard([path], f"Wav2Lip could not load {path}", load,
                                   code="VIDEO_WAV2LIP_UNAVAILABLE",
                                   message_ja="Wav2Lip を読み込めません。")

    def close(self) -> None:
        from models.gpu import drop

        drop(self.key)
        self._model.clear()

    def render(self, request: RenderRequest, progress: ProgressFn = no_progress) -> Path:
        from models.talking_head.landmark import LandmarkHead, write_performance

        progress(0.0, "prepare")
        model = self._model.get()
        performance = LandmarkHead(self.settings).perform(request)
        audio = request.speech.audio
        mels = mel_windows(melspectrogram(audio.samples, audio.sample_rate),
                           performance.frames, request.fps)
        frames = self.lipsync(model, performance, mels)
        write_performance(performance, request, progress, frames=frames)
        return Path(request.output)

    def lipsync(self, model: Any, performance: Any, mels: np.ndarray
                ) -> Iterator[np.ndarray]:
        """Yield the built-in frames with the lower face redrawn, batch by batch."""
        from models.gpu import batch_size

        device = str(next(model.parameters()).device)
        batch = self.batch or batch_size(device, per_item_mb=24.0, default=16)
        base_iter = performance.iter_frames()
        mask = feather_mask(FACE)
        for start in range(0, performance.frames, batch):
            idx = list(range(start, min(start + batch, performance.frames)))
            frames = [next(base_iter).copy() for _ in idx]
            boxes = [face_box(performance, i) for i in idx]
            crops = np.stack([crop(f, b) for f, b in zip(frames, boxes, strict=True)])
            pred = redraw_faces(self.key, crops, mels[idx])
            for frame, box, face in zip(frames, boxes, pred, strict=True):
                yield paste(frame, face, box, mask)


@gpu_task()
def redraw_faces(key: str, crops: np.ndarray, mels: np.ndarray) -> np.ndarray:
    """The network's faces (N, 96, 96, 3) RGB float 0..255 for RGB ``crops`` (N, 96, 96, 3).

    As the original ``inference.py`` does, each face is stacked with its own unmasked copy
    (6 channels, masked first) and scaled to [0, 1].

    The released network was trained on OpenCV's BGR frames (``cv2.imread``, no conversion in
    the original ``inference.py``): the crops go in as BGR and its output comes back as BGR,
    so both are swapped here. A module-level function given the model's key (see
    ``models.gpu.keep``), so that ZeroGPU pickles only a key and arrays.
    """
    import torch

    from models.gpu import live

    model, lock = live(key)
    param = next(model.parameters())
    bgr = crops[..., ::-1]
    faces = np.concatenate([masked(bgr), bgr], axis=3)
    face_t = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2)
    face_t = face_t.to(param.device).to(param.dtype).div(255.0)
    mel_t = torch.from_numpy(np.ascontiguousarray(mels[:, None])).to(param.device, param.dtype)
    with lock, torch.inference_mode():
        out = model(mel_t, face_t).float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
    return np.ascontiguousarray(out[..., ::-1])


def load_checkpoint(path: Path, device: Any) -> Any:
    import torch

    state = torch.load(str(path), map_location=device, weights_only=True)
    state = state.get("state_dict", state)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = build_model()
    model.load_state_dict(state)
    return model.to(device).eval()


def face_box(performance: Any, i: int) -> tuple[int, int, int, int]:
    """A square around the whole face in frame ``i`` (Wav2Lip sees the full face)."""
    from models.talking_head.face_mesh import FACE_OVAL

    c = performance.controls(i)
    pts = performance.rig.points[FACE_OVAL]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    y1 += 0.1 * (y1 - y0)  # room for the jaw to drop
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2 + c.dx, (y0 + y1) / 2 + c.dy - c.breath
    x, y, n = int(round(cx - side / 2)), int(round(cy - side / 2)), int(round(side))
    return x, y, x + n, y + n


def crop(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = box
    h, w = frame.shape[:2]
    padded = cv2.copyMakeBorder(frame, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w),
                                cv2.BORDER_REPLICATE)
    ox, oy = max(0, -x0), max(0, -y0)
    part = padded[y0 + oy:y1 + oy, x0 + ox:x1 + ox]
    return cv2.resize(part, (FACE, FACE), interpolation=cv2.INTER_AREA)


def masked(faces: np.ndarray) -> np.ndarray:
    """Faces (..., 96, 96, 3) with their lower half blacked out, as Wav2Lip's input wants."""
    out = faces.copy()
    out[..., FACE // 2:, :, :] = 0
    return out


def paste(frame: np.ndarray, face: np.ndarray, box: tuple[int, int, int, int],
          mask: np.ndarray) -> np.ndarray:
    """Blend the network's 96x96 face into ``box`` of ``frame`` with a feathered mask."""
    import cv2

    x0, y0, x1, y1 = box
    side = x1 - x0
    big = cv2.resize(face.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
    weight = cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR)[..., None]
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame
    sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    a = weight[sub]
    frame[fy0:fy1, fx0:fx1] = np.clip(region * (1 - a) + big[sub] * a, 0, 255).astype(np.uint8)
    return frame
