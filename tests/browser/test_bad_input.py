"""Bad input in the browser: a readable error in the page's language, said as soon as the
file is added, and a page that keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.checks import PORTRAIT, assert_error_toast
from tests.browser.page import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_bad_input_is_readable_and_the_page_keeps_working(page: Page, tmp_path: Path) -> None:
    # empty text with a photo: a readable error, in this language
    page.upload("message-photo", PORTRAIT)
    page.wait(lambda: page.all("#message-photo img"), 60, "the photo preview")
    page.click("#message-generate")
    assert_error_toast(page)
    page.shot("empty-text")
    assert page.video_in("message-video") is None
    page.close_toasts()

    # the Voice tab: a spoken line, then empty text: the error badge sits on the player and
    # the engine line stays readable
    page.tab("voice")
    page.click("#voice-speak")
    page.audio_shown("voice-audio")
    engine_line = page.wait(lambda: page.text("#voice-engine"), 60, "the engine line")
    page.find("#voice-text textarea").clear()
    page.js("const t = document.querySelector('#voice-text textarea');"
            "t.value = ''; t.dispatchEvent(new Event('input', {bubbles: true}));")
    page.click("#voice-speak")
    assert "VOICE_TEXT_EMPTY" in assert_error_toast(page)
    page.shot("voice-empty-text")
    assert page.text("#voice-engine") == engine_line
    badge = "[data-testid='status-tracker'] span.error"
    assert page.all(f"#voice-audio {badge}"), "the player shows the error"
    assert not page.all(f"#voice-engine {badge}"), "an error badge covers the engine line"
    page.close_toasts()

    page.tab("message")
    page.type_into("message-text", "OK")
    page.wait(lambda: "2 / 1000" in page.text("#message-count"), 30, "the page still answers")
    # the counter follows a clear too
    page.find("#message-text textarea").clear()
    page.js("const t = document.querySelector('#message-text textarea');"
            "t.value = ''; t.dispatchEvent(new Event('input', {bubbles: true}));")
    page.wait(lambda: page.text("#message-count").startswith("0 /"), 30, "the count at 0")
    page.shot("still-working")


@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_text_file_named_jpg(page: Page, tmp_path: Path) -> None:
    """A text file named .jpg on the Image and Video tabs: an IMAGE_* error in the page's
    language as soon as it is added, and the refused file taken out (it stayed as a broken
    image until Detect); then the page still answers. Gradio's own preprocessing error is
    turned into ours by app/ui/uploads.py."""
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("this is not a picture\n" * 20)
    for tab, field in (("image", "image-photo"), ("video", "video-portrait")):
        page.tab(tab)
        page.upload(field, fake)
        shown = assert_error_toast(page)
        assert "IMAGE_" in shown and "preprocess" not in shown, shown
        shown_img = f"#{field} img"
        page.wait(lambda: not page.all(shown_img), 30,  # noqa: B023 (waited on at once)
                  f"the refused file out of {field}")
        page.shot(f"text-as-jpg-{tab}")
        page.close_toasts()
    page.tab("image")
    page.upload("image-photo", PORTRAIT)  # a real photo after the refused one is taken
    page.wait(lambda: page.all("#image-photo img"), 60, "the photo preview")
    assert not page.all(".toast-body.error"), page.toasts()
    page.tab("message")
    page.type_into("message-text", "OK")
    page.wait(lambda: "2 / 1000" in page.text("#message-count"), 30, "the page still answers")


@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_bad_photos_are_said_at_upload(page: Page, tmp_path: Path) -> None:
    """On the Message tab a 1-pixel image and a text file named .jpg are refused as soon as
    they are added (they ran a job, or showed a broken image until Generate), in the page's
    language; Cancel with nothing running says so (it said "Cancelled.")."""
    from PIL import Image

    page.click("#message-cancel")
    page.wait(lambda: page.word("message.nothing_running") in page.text("#message-status"),
              30, "nothing to cancel")
    assert page.word("message.cancelled") not in page.text("#message-status")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), "white").save(tiny)
    page.upload("message-photo", tiny)
    shown = assert_error_toast(page)
    assert page.word("message.too_small").split("{")[0] in shown, shown
    page.wait(lambda: not page.all("#message-photo img"), 30, "the refused photo taken out")
    page.shot("tiny-photo")
    page.close_toasts()
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("this is not a picture\n" * 20)
    page.driver.get(page.url + "/")  # a fresh Message tab
    page.open()
    page.upload("message-photo", fake)
    shown = assert_error_toast(page)
    assert "IMAGE_" in shown, shown
    # no broken-image preview left looking like a photo that was taken
    page.wait(lambda: not page.all("#message-photo img"), 30, "the refused file taken out")
    page.shot("text-as-jpg")
    assert page.video_in("message-video") is None
