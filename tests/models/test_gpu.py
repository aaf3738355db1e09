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

    def GPU(duration: int = 60):  # noqa: N802 - the real decorator's name
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
