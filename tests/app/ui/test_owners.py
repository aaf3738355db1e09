""""Use the latest output" with the login off hands a page only what that browser session
made (it picked the newest file in storage: another person's voice)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def test_latest_output_is_this_sessions_own(services: Any) -> None:
    import io

    import numpy as np
    import soundfile as sf

    from app.ui.owners import remember
    from app.ui.prosody import latest_audio

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(2400, np.float32), 24000, format="WAV")
    mine, theirs = SimpleNamespace(session_hash="a1"), SimpleNamespace(session_hash="b2")
    key = services.storage.put("temp/voices/kokoro/mine.wav", buffer.getvalue())
    remember(services, mine, key)
    services.storage.put("temp/voices/kokoro/theirs.wav", buffer.getvalue())  # newer
    assert latest_audio(services.storage, services, ("voices/", "temp/voices/"), mine).endswith("mine.wav")
    assert latest_audio(services.storage, services, ("voices/", "temp/voices/"), theirs) is None
