"""OpenVoice v2 converter: real loading and inference code, random weights of a tiny config
(and a size check of the full published architecture)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from models.base import Audio, EngineSettings, VoiceTarget
from models.errors import BackendUnavailable
from models.voice.openvoice import DEFAULT_CONFIG, OpenVoiceConverter, build_model
from tests.fixtures.voice import SENTENCES, ojt_speech

TINY = copy.deepcopy(DEFAULT_CONFIG)
TINY["data"].update(filter_length=256, hop_length=64, win_length=256)
TINY["model"].update(inter_channels=16, hidden_channels=16, filter_channels=32,
                     upsample_rates=[8, 8], upsample_kernel_sizes=[16, 16],
                     upsample_initial_channel=32, resblock_kernel_sizes=[3],
                     resblock_dilation_sizes=[[1, 3, 5]], gin_channels=8)


def _write_checkpoint(models_dir: Path, config: dict) -> None:
    import torch

    folder = models_dir / "openvoice_v2" / "converter"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    torch.save({"model": build_model(config).state_dict()}, folder / "checkpoint.pth")


def test_unavailable_without_weights(tmp_path: Path) -> None:
    ok, why = OpenVoiceConverter(EngineSettings(models_dir=tmp_path)).available()
    assert not ok
    assert "checkpoint" in why
    assert not OpenVoiceConverter(EngineSettings()).available()[0]


@pytest.mark.slow
def test_converts_with_random_weights(tmp_path: Path) -> None:
    _write_checkpoint(tmp_path, TINY)
    engine = OpenVoiceConverter(EngineSettings(models_dir=tmp_path))
    ok, why = engine.available()
    assert ok, why
    source = Audio(ojt_speech(SENTENCES[0])[: 24000 * 2], 24000)
    reference = Audio(ojt_speech(SENTENCES[1], half_tone=-3), 24000)
    out = engine.convert(source, VoiceTarget("openvoice_00000001:x", reference))
    assert out.sample_rate == 24000
    assert len(out.samples) == len(source.samples)
    assert np.isfinite(out.samples).all()
    assert np.abs(out.samples).max() <= 1.0  # the generator ends in tanh
    assert out.samples.std() > 0  # it made a signal, not silence


def test_checkpoint_must_match_architecture(tmp_path: Path) -> None:
    import torch

    from models.base import Audio as A

    folder = tmp_path / "openvoice_v2" / "converter"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY))
    torch.save({"model": {"nonsense": torch.zeros(1)}}, folder / "checkpoint.pth")
    engine = OpenVoiceConverter(EngineSettings(models_dir=tmp_path))
    # a checkpoint that does not fit is a load error: the chain moves on, with the reason
    with pytest.raises(BackendUnavailable, match="could not load"):
        engine.convert(A(np.zeros(24000, np.float32), 24000),
                       VoiceTarget("x", A(np.zeros(24000, np.float32), 24000)))


@pytest.mark.slow
def test_full_architecture_matches_published_checkpoint_size() -> None:
    """The published converter/checkpoint.pth is ~131 MB of float32: ~32.8 M parameters."""
    model = build_model(DEFAULT_CONFIG)
    count = sum(p.numel() for p in model.parameters())
    assert 32.5e6 < count < 33.1e6
    keys = model.state_dict().keys()
    for key in ("enc_q.enc.cond_layer.weight_g", "flow.flows.6.post.weight",
                "ref_enc.gru.weight_ih_l0", "dec.ups.3.weight_v", "dec.cond.weight"):
        assert key in keys
