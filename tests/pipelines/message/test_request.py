"""The message's request and stage outputs: validated once, stored as JSON, read back typed."""

from __future__ import annotations

import pytest

from models.base import Timing
from models.errors import InvalidInput
from pipelines.message.outputs import (
    BgmOutput,
    ImageOutput,
    ProsodyOutput,
    SubtitlesOutput,
    VideoOutput,
    VoiceOutput,
    stretched,
)
from pipelines.message.request import MessageRequest
from pipelines.sizes import PORTRAIT, SQUARE


def test_defaults_and_language_guess() -> None:
    ja = MessageRequest.validated(image_key="k", text=" お誕生日おめでとう ", size="",
                                  background=None, emotion="", voice="  ")
    assert (ja.text, ja.language, ja.size, ja.background, ja.emotion, ja.voice) == (
        "お誕生日おめでとう", "ja", SQUARE, "blur", "auto", None)
    assert MessageRequest.validated(image_key="k", text="Happy birthday").language == "en"


def test_params_round_trip_through_the_queue_json() -> None:
    request = MessageRequest.validated(image_key="k", text="hi", size="720×1280",
                                       bgm_volume="0.4", seed="7", subtitles=True)
    params = request.params()
    assert params["size"] == "720x1280" and params["bgm_volume"] == 0.4
    assert set(params) == {"image_key", "text", "voice", "language", "emotion", "bgm",
                           "bgm_volume", "size", "subtitles", "background", "seed"}
    again = MessageRequest.from_params(params)
    assert again == request and again.size is PORTRAIT
    assert not MessageRequest.validated(image_key="k", text="hi", bgm="none").wants_music


@pytest.mark.parametrize(("raw", "code", "field"), [
    ({"size": "640x480"}, "VIDEO_INVALID_SIZE", "size"),
    ({"language": "fr"}, "VOICE_INVALID_LANGUAGE", "language"),
    ({"emotion": "furious"}, "PROSODY_INVALID_PARAMS", "emotion"),
    ({"bgm_volume": "1.5"}, "BGM_INVALID_PARAMS", "bgm_volume"),
    ({"background": "plaid"}, "IMAGE_INVALID_FRAMING", "background"),
])
def test_each_bad_choice_keeps_its_area_code(raw: dict, code: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        MessageRequest.validated(image_key="k", text="hi", **raw)
    assert caught.value.code == code
    assert caught.value.details["field"] == field
    assert caught.value.details["allowed"]
    assert caught.value.message_ja


def test_empty_text_is_the_voice_area_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        MessageRequest.validated(image_key="k", text="  ")
    assert caught.value.code == "VOICE_TEXT_EMPTY"


def test_stage_outputs_read_back_what_they_store() -> None:
    words = (Timing(0.0, 0.51234, "こんにちは"), Timing(0.6, 1.2, "世界"))
    outputs = [
        ImageOutput("processed/final/a.png", (1, 2, 3, 4), ({"operation": "framing"},),
                    {"framing": "upper_body_crop"}, "mediapipe", True),
        VoiceOutput("voices/kokoro/a.wav", words, words[:1], 1.2345, "kokoro", False, None,
                    "jf_alpha", None, {"tts": "kokoro", "conversion": None}),
        ProsodyOutput("prosody/a.wav", "happy", {"pitch": "+2"}, 1.1, 0.9),
        BgmOutput("bgm/mixes/a.m4a", "happy-1", 1.0, 2.0, {"duration": 4.0}),
        VideoOutput("videos/final/a.mp4", 4.2, "512x512", "builtin", False, None, words),
        SubtitlesOutput("videos/final/b.mp4", "videos/final/b.srt", "videos/final/b.vtt", 2),
    ]
    for output in outputs:
        again = type(output).from_dict(output.as_dict())
        assert again.as_dict() == output.as_dict()
    voice = VoiceOutput.from_dict(outputs[1].as_dict())
    assert voice.sentences[0] == Timing(0.0, 0.5123, "こんにちは")  # stored to 0.1 ms


def test_outputs_stored_before_the_dataclasses_still_read() -> None:
    stored = {"prosody_key": "prosody/x.wav", "emotion": "calm", "changes": {},
              "duration": 2.0, "time_scale": 1.25, "backend": "rubberband+praat"}
    assert ProsodyOutput.from_dict(stored).time_scale == 1.25
    video = VideoOutput.from_dict({"video_key": "v.mp4", "duration": 3.0, "size": "512x512",
                                   "backend": "builtin", "fallback_used": None,
                                   "fallback_method": None,
                                   "speech_sentences": [[0.4, 1.0, "hi"]]})
    assert video.speech_sentences == (Timing(0.4, 1.0, "hi"),) and not video.fallback_used


def test_stretched_timings_follow_the_reshaped_voice() -> None:
    assert stretched((Timing(1.0, 2.0, "a"),), scale=0.5, shift=0.4) == (
        Timing(0.9, 1.4, "a"),)
