from __future__ import annotations

import sys
import types

from models import gpu


def test_plain_call_off_spaces(monkeypatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)

    def work(x: int) -> int:
        return x + 1

    assert gpu.gpu_task()(work) is work
    assert gpu.torch_device("cpu") == "cpu"


def test_spaces_gpu_decorator_used_on_a_space(monkeypatch) -> None:
    calls = []
    fake = types.ModuleType("spaces")

    def GPU(duration: int = 60):  # the real decorator's name
        def deco(fn):
            def run(*a, **k):
                calls.append(duration)
                return fn(*a, **k)
            return run
        return deco

    fake.GPU = GPU
    fake.__spec__ = types.SimpleNamespace(name="spaces")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACE_ID", "user/studio")
    monkeypatch.setattr(gpu.importlib.util, "find_spec", lambda name: object())

    @gpu.gpu_task(duration=30)
    def work(x: int) -> int:
        return x * 2

    assert work(4) == 8
    assert calls == [30]
    assert work.__name__ == "work"


def test_batch_size_and_device_without_cuda() -> None:
    assert gpu.batch_size("cpu", per_item_mb=24.0, default=16) == 16
    assert gpu.half_precision("cpu") is False
    assert gpu.half_precision("cuda") is True
    import torch  # a requirement of the studio: missing, the test fails rather than skips
    if not torch.cuda.is_available():
        assert gpu.torch_device("cuda") == "cpu"  # asked for, not there: the CPU, not a crash


def test_models_kept_for_gpu_functions() -> None:
    model = object()
    key = gpu.keep("test:model", model)
    found, lock = gpu.live(key)
    assert found is model
    assert lock.acquire(blocking=False)
    lock.release()
    gpu.drop(key)
    with __import__("pytest").raises(KeyError):
        gpu.live(key)


def test_zero_gpu_functions_get_only_picklable_arguments(monkeypatch, tmp_path) -> None:
    """ZeroGPU pickles what a ``spaces.GPU`` function is called with: the engines call
    module-level functions with a key and arrays, never a bound method holding a model."""
    import importlib
    import pickle

    import numpy as np
    import transformers  # with torch, a requirement: never skipped
    calls: list[str] = []
    fake = types.ModuleType("spaces")

    def GPU(duration: int = 60):
        def deco(fn):
            def run(*a, **k):
                pickle.dumps((a, k))  # raises for a model or a bound method's engine
                calls.append(fn.__name__)
                return fn(*a, **k)
            return run
        return deco

    fake.GPU = GPU
    fake.__spec__ = types.SimpleNamespace(name="spaces")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACE_ID", "user/studio")
    real_find_spec = gpu.importlib.util.find_spec
    monkeypatch.setattr(gpu.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "spaces" else real_find_spec(name, *a))
    import models.cutout.segformer as segformer

    try:
        importlib.reload(segformer)
        labels = ["Background", "Hair", "Face"]
        config = transformers.SegformerConfig(
            num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
            patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
            decoder_hidden_size=16, num_labels=3, id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)})
        transformers.SegformerForSemanticSegmentation(config).save_pretrained(
            tmp_path / "segformer")
        from models.base import EngineSettings

        engine = segformer.SegformerCutout(EngineSettings(models_dir=tmp_path, device="cpu"))
        out = engine.person_probability(np.zeros((32, 24, 3), np.uint8))
        assert out.shape == (32, 24)
        assert calls == ["segformer_person"]
    finally:
        monkeypatch.undo()
        importlib.reload(segformer)
