"""A Kokoro voice with one mix's sound and another's prosody ("timbre/prosody"): its style
rows are split where Kokoro's model splits them, it speaks with the prosody's pitch, and a
malformed half is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.base import EngineSettings
from models.errors import StudioError
from models.speech.kokoro import TIMBRE_ROWS, KokoroSpeech
from models.voice.matching import pitch_median
from tests.conftest import unavailable

PITCHED = "jm_kumo/jm_kumo:0.5+jf_nezumi:0.5"


@pytest.fixture(scope="module")
def kokoro(tmp_path_factory: pytest.TempPathFactory) -> KokoroSpeech:
    engine = KokoroSpeech(EngineSettings(cache_dir=tmp_path_factory.mktemp("kokoro")))
    if not engine.available()[0]:
        unavailable(engine.available()[1])
    return engine


def test_the_halves_of_a_voice_are_its_sound_and_its_prosody(kokoro: KokoroSpeech) -> None:
    assert kokoro.halves(PITCHED) == ("jm_kumo", "jm_kumo:0.5+jf_nezumi:0.5")
    assert kokoro.halves("jm_kumo:0.3+jf_alpha:0.7") == ("jm_kumo:0.3+jf_alpha:0.7",) * 2
    pack = kokoro.pack(PITCHED)
    kumo, nezumi = kokoro.pack("jm_kumo"), kokoro.pack("jf_nezumi")
    assert pack.shape == kumo.shape
    np.testing.assert_allclose(pack[..., :TIMBRE_ROWS], kumo[..., :TIMBRE_ROWS])
    np.testing.assert_allclose(pack[..., TIMBRE_ROWS:],
                               0.5 * (kumo + nezumi)[..., TIMBRE_ROWS:], atol=1e-6)
    assert kokoro.parse_blend(PITCHED) == [("jm_kumo", 1.0)]
    assert kokoro.owns(PITCHED)


@pytest.mark.parametrize("voice", ["jm_kumo/", "/jm_kumo", "jm_kumo/jx_nobody",
                                   "jm_kumo/jf_alpha/jf_nezumi", "jm_kumo/jf_alpha:0"])
def test_a_malformed_half_is_an_unknown_voice(kokoro: KokoroSpeech, voice: str) -> None:
    with pytest.raises(StudioError) as caught:
        kokoro.owns(voice)
    assert caught.value.code == "VOICE_UNKNOWN_VOICE"
    assert voice in caught.value.message


@pytest.mark.slow
def test_kumo_with_half_a_womans_prosody_speaks_higher_with_his_sound(
        kokoro: KokoroSpeech, tmp_path: Path) -> None:
    """Between Kumo's pitch and Nezumi's, and heard by the speaker encoder as nearer Kumo
    than Nezumi: the prosody moved, the sound did not."""
    from models.base import SpeechRequest
    from models.voice.resemblyzer import ResemblyzerEncoder, cosine

    text = "こんにちは。今日はとても良い天気ですね。"
    said = {voice: kokoro.synthesize(SpeechRequest(text, voice=voice, language="ja")).audio
            for voice in ("jm_kumo", "jf_nezumi", PITCHED)}
    f0 = {v: pitch_median(a) for v, a in said.items()}
    assert f0["jm_kumo"] * 1.1 < f0[PITCHED] < f0["jf_nezumi"] * 0.9, f0
    encoder = ResemblyzerEncoder(EngineSettings(cache_dir=tmp_path))
    heard = {v: encoder.embed_one(a) for v, a in said.items()}
    assert cosine(heard[PITCHED], heard["jm_kumo"]) > cosine(heard[PITCHED], heard["jf_nezumi"])
