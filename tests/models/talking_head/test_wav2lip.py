"""Wav2Lip with randomly initialised weights: shapes, mel windows, alignment, paste-back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.base import Audio, EngineSettings, RenderRequest, Speech
from models.talking_head.wav2lip import (
    FACE,
    MEL_STEP,
    Wav2LipHead,
    build_model,
    feather_mask,
    load_checkpoint,
    mel_windows,
    melspectrogram,
    paste,
)
from tests.fixtures.video import ffprobe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    import torch

    torch.manual_seed(0)
    return build_model().eval()


def test_forward_shapes(model) -> None:
    import torch

    with torch.inference_mode():
        out = model(torch.rand(3, 1, 80, MEL_STEP), torch.rand(3, 6, FACE, FACE))
    assert out.shape == (3, 3, FACE, FACE)
    assert 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


def test_mel_and_windows() -> None:
    rate = 16000
    t = np.arange(rate * 2) / rate
    mel = melspectrogram((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    assert mel.shape[0] == 80
    assert abs(mel.shape[1] - 160) <= 2  # 80 mel frames per second
    assert mel.min() >= -4
    assert mel.max() <= 4
    windows = mel_windows(mel, 50, 25)
    assert windows.shape == (50, 80, MEL_STEP)
    assert np.array_equal(windows[10], mel[:, 32:48])  # frame i starts at int(i * 80 / 25)
    assert np.array_equal(windows[49][:, :4], mel[:, 156:160])  # edge-padded at the end


def test_feathered_paste_changes_only_the_lower_box() -> None:
    mask = feather_mask(FACE)
    assert mask[0].max() == 0.0
    assert mask[: FACE // 3].max() == 0.0
    assert mask[int(FACE * 0.75), FACE // 2] == pytest.approx(1.0)
    frame = np.full((200, 200, 3), 50, np.uint8)
    out = paste(frame.copy(), np.full((FACE, FACE, 3), 250.0), (50, 50, 146, 146), mask)
    assert np.array_equal(out[:50], frame[:50])
    assert np.array_equal(out[:, :50], frame[:, :50])
    assert out[120, 98].min() > 240
    assert out[60, 98].max() == 50
    edge = out[100:146, 52]
    assert edge.max() < 150  # feathered near the border


def test_checkpoint_roundtrip_and_availability(model, tmp_path: Path) -> None:
    import torch

    settings = EngineSettings(models_dir=tmp_path)
    assert not Wav2LipHead(settings).available()[0]
    (tmp_path / "wav2lip").mkdir()
    state = {"state_dict": {"module." + k: v for k, v in model.state_dict().items()}}
    torch.save(state, tmp_path / "wav2lip" / "wav2lip_gan.pth")
    assert Wav2LipHead(settings).available()[0]
    loaded = load_checkpoint(tmp_path / "wav2lip" / "wav2lip_gan.pth", torch.device("cpu"))
    with torch.inference_mode():
        x = (torch.rand(1, 1, 80, MEL_STEP), torch.rand(1, 6, FACE, FACE))
        assert torch.allclose(loaded(*x), model(*x))


def test_render_keeps_frame_alignment(model, portrait, tmp_path: Path) -> None:
    audio = Audio((0.2 * np.sin(np.arange(24000) / 24000 * 2 * np.pi * 180)).astype(np.float32),
                  24000)
    head = Wav2LipHead(EngineSettings(), model=model, batch=8)
    out = tmp_path / "w.mp4"
    head.render(RenderRequest(portrait, Speech(audio), size=(256, 256), output=out))
    video = next(s for s in ffprobe(out)["streams"] if s["codec_type"] == "video")
    assert int(video["nb_frames"]) == 25
    assert abs(float(video["duration"]) - 1.0) <= 0.04
