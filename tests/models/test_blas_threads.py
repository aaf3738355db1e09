"""The studio's process runs numpy's and scipy's BLAS on one thread, unless told otherwise
(each case in a fresh interpreter: the limit is process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from threadpoolctl import threadpool_info
before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
from models.blas_threads import limit_blas_threads
limit = limit_blas_threads()
import numpy
numpy.ones((200, 200)) @ numpy.ones((200, 200))
after = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
print(json.dumps({"limit": limit, "after": after}))
"""


def probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**clean, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_blas_runs_on_one_thread() -> None:
    found = probe()
    after = found["after"]
    assert isinstance(after, dict) and len(after) >= 2  # numpy's OpenBLAS and scipy's
    assert found["limit"] == 1 and set(after.values()) == {1}


@pytest.mark.parametrize("asked", ["2", "3"])
def test_a_set_thread_count_is_kept(asked: str) -> None:
    found = probe(OPENBLAS_NUM_THREADS=asked)
    after = found["after"]
    assert isinstance(after, dict) and after
    assert found["limit"] == int(asked) and set(after.values()) == {int(asked)}
