from __future__ import annotations

import re

import pytest

from app.i18n import pick_language


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"), ("", "en"), ("ja", "ja"), ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
    ("en-US,en;q=0.9,ja;q=0.8", "en"), ("fr-FR,ja;q=0.5", "ja"), ("de", "en"),
    ("ja;q=0,en", "en"), ("ja;q=abc,en;q=0.2", "en"),
])
def test_pick_language(header: str | None, expected: str) -> None:
    assert pick_language(header) == expected


def test_catalogue_has_every_word_in_both_languages() -> None:
    from app.i18n import CATALOGUE
    from app.ui import build_blocks  # noqa: F401 - importing the tabs registers their strings
    from app.ui.text import _TABLES

    assert set(CATALOGUE["en"]) == set(CATALOGUE["ja"])
    assert set(_TABLES["en"]) == set(_TABLES["ja"])
    assert set(CATALOGUE["en"]) <= set(_TABLES["en"])  # the shared words reach the UI
    untranslated = [k for k, v in _TABLES["ja"].items()
                    if v == _TABLES["en"][k] and re.search(r"[a-z]{4,}", v)]
    assert not untranslated, untranslated


def test_step_text_names_every_pipeline_step() -> None:
    from app.i18n import step_text

    assert step_text("synthesize", "ja") == "音声を合成中"
    assert step_text("render", "en") == "animating the face"
    assert step_text("image,voice", "ja") == "写真を切り抜き中 + 音声を合成中"
    assert step_text("video: render", "en") == "animating the face"
    assert step_text("tone 440 Hz", "ja") == "tone 440 Hz"  # unknown: shown as it is
    assert step_text(None) == ""


def test_errors_are_titled_and_worded_in_the_page_language() -> None:
    from app.ui.text import studio_error, toast_css, ui_error
    from models.errors import StudioError

    error = studio_error(StudioError("Text is empty.", code="VOICE_TEXT_EMPTY",
                                     message_ja="テキストが空です。"), "ja")
    assert error.message == "テキストが空です。 (VOICE_TEXT_EMPTY)" and error.title == "エラー"
    assert ui_error("x").title == "Error"
    css = toast_css()  # Gradio 6 shows the toast type as title: CSS swaps it per <html lang>
    assert 'html[lang|="ja"] .toast-title.error::before {content: "エラー"' in css


def test_message_notes_history_and_steps_in_japanese() -> None:
    from app.ui.message import describe, history_caption, step_description

    result = {"engines": {"video": "builtin", "voice": {"tts": "kokoro", "conversion": "tts"},
                          "image": {"background_removal": "mediapipe",
                                    "sam2_refinement": "closed_form"}},
              "emotion": "celebration", "duration": 4.2, "size": "512x512",
              "processing_time": 9.1, "fallback_used": True}
    notes = describe(result, "ja")
    assert "音声: **Kokoro ニューラル音声**" in notes and "お祝い" in notes
    assert "長さ 4.2 s" in notes and "作成時間 9.1 s" in notes and "512×512" in notes
    assert "voice:" not in notes and "fallback" not in notes
    assert "voice: **the Kokoro neural voice**" in describe(result, "en")
    assert "→" not in notes  # a built-in voice is not converted: no "→ tts"
    profile = dict(result, engines={**result["engines"],
                                    "voice": {"tts": "kokoro", "conversion": "voice_matching"}})
    assert "**the Kokoro neural voice** → pitch and formant voice matching" in describe(
        profile, "en")
    caption = history_caption(0.0, "お誕生日おめでとう！素敵な一年になりますように。皆さんによろしく",
                              "0123456789abcdef0123456789abcdef")
    when, rest = caption.split(" · ", 1)
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d\d:\d\d", when)  # test_dates
    assert rest.endswith("…\n#0123456789ab")
    assert step_description("video: render", "processing", "ja") == "顔を動かしています"
    assert step_description(None, "queued", "ja") == "ワーカーを待っています"
    assert step_description("done", "processing", "en") is None


def test_char_count_follows_the_text() -> None:
    from app.ui.message import char_count

    assert char_count("") == "0 / 1000 characters"
    assert char_count(None) == "0 / 1000 characters"
    assert char_count("あいう") == "3 / 1000 characters"
    assert char_count("x" * 950).startswith("**950 / 1000")


def test_every_engine_capability_is_named_in_both_languages() -> None:
    """The Engines panel names each capability of the registry (a new one showed its raw key,
    'denoise', on the Japanese page)."""
    from app.ui import engines  # noqa: F401 - importing the panel registers its words
    from app.ui.text import word
    from models.registry import CAPABILITIES

    for capability in CAPABILITIES:
        for lang in ("en", "ja"):
            assert word("cap.", capability, lang) != capability, (capability, lang)
    assert word("cap.", "denoise", "ja") == "録音のノイズ除去"


def test_time_left_is_estimated_from_the_progress_made() -> None:
    """A slow message says how long it still needs, once there is something to go on."""
    from app.ui.message import Clock, time_left

    clock = Clock()
    assert clock.left(0.33, now=100.0) is None  # the first report starts the clock
    assert clock.left(0.34, now=103.0) is None  # too soon to tell
    assert clock.left(0.38, now=160.0) == pytest.approx((1 - 0.38) * 60 / 0.05)
    assert time_left(744.0, "en") == "about 12 min left"
    assert time_left(744.0, "ja") == "残り約 12 分"
    assert time_left(38.0, "en") == "about 40 s left"
    assert time_left(1.0, "ja") == "残り約 5 秒"


def test_the_message_tab_says_no_person_in_its_own_words(services) -> None:
    """A message job that found nobody: the Message tab has no sensitivity control, so its
    toast does not tell people to raise one."""
    import gradio as gr

    from app.ui import message_desk
    from app.ui.message import MessageTab
    from pipelines.message.chain import KIND

    job = services.jobs.create(KIND, {}, ["image"])
    services.jobs.update(job.id, status="failed", error={
        "code": "IMAGE_NO_PERSON", "message": "No person was found in the image. Try a photo "
        "where a face is visible, or raise the detection sensitivity.", "message_ja": "…"})
    for lang, words in (("en", "a face is clearly visible"), ("ja", "顔がはっきり写った")):
        with pytest.raises(gr.Error) as info:
            MessageTab(message_desk(services))._wait(job.id, lang, lambda *a, **k: None)
        assert words in info.value.message and "sensitivity" not in info.value.message
        assert "IMAGE_NO_PERSON" in info.value.message


def test_the_footer_names_the_storage_in_the_page_language(services: object) -> None:
    """"保存先: local" was English on the Japanese page."""
    from app.ui import footer_text

    assert footer_text(services, "ja").endswith("保存先: このコンピュータ")  # type: ignore[arg-type]
    assert footer_text(services, "en").endswith("storage: this computer")  # type: ignore[arg-type]
