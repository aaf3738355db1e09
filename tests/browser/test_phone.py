"""The studio at a phone's width: tabs, lists and tables usable at 390 px."""

from __future__ import annotations

import re

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.browser.checks import DATE_FORM, PORTRAIT
from tests.browser.page import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.mark.parametrize("page", ["en"], indirect=True)
def test_phone_width(page: Page) -> None:
    """At 390 px the Message tab is used without scrolling sideways: photo, text, Generate and
    the video all inside the screen's width."""
    page.window_height = 844
    page.driver.set_window_size(390, 844)
    page.wait(lambda: page.js("return window.innerWidth") <= 400, 15, "phone width")
    page.wait(page.no_horizontal_scroll, 15, "no sideways scrolling")
    width = page.js("return document.documentElement.clientWidth")
    for css in ("#message-photo", "#message-text", "#message-generate", "#message-video"):
        box = page.find(css).rect
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (css, box, width)
    page.upload("message-photo", PORTRAIT)
    page.wait(lambda: page.all("#message-photo img"), 60, "the photo preview")
    page.type_into("message-text", "Hi!")
    assert page.no_horizontal_scroll()
    page.shot("phone-390")
    assert page.find("#message-generate").find_element(By.XPATH, ".").is_displayed()


@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_phone_width_lists_and_tables(page: Page) -> None:
    """At 390 px every dropdown shows its choice whole (none runs under its own arrow) and
    the Jobs table keeps ids and times on one line (it wrapped them a character a line);
    the tabs the screen has no room for are behind a "⋯" that says so in the page's
    language."""
    from tests.fixtures.voice import SENTENCES, ojt_speech, wav_bytes

    short = wav_bytes(ojt_speech(SENTENCES[0])[:24000])  # a job that fails at once: a row
    httpx.post(page.url + "/api/voice/profiles", data={"name": "short"}, timeout=60,
               files=[("audio_samples", ("short.wav", short, "audio/wav"))])
    page.window_height = 844
    page.driver.set_window_size(390, 844)
    page.wait(lambda: page.js("return window.innerWidth") <= 400, 15, "phone width")
    page.wait(page.no_horizontal_scroll, 15, "no sideways scrolling")
    overflowing = ("return Array.from(document.querySelectorAll(arguments[0]))"
                   ".filter(i => i.offsetParent && i.scrollWidth > i.clientWidth + 1)"
                   ".map(i => i.value)")
    dropdowns = "#message-row .wrap-inner input, #voice-voice-row .wrap-inner input"
    assert not page.js(overflowing, dropdowns), page.js(overflowing, dropdowns)
    more = page.js("return getComputedStyle(document.querySelector('.overflow-menu > button'),"
                   " '::after').content")
    assert page.word("tabs.more") in more, more
    page.shot("phone-message")
    page.tab("voice")
    page.wait(lambda: page.find("#voice-voice input").get_attribute("value"), 30, "a voice")
    assert not page.js(overflowing, dropdowns), page.js(overflowing, dropdowns)
    page.shot("phone-voice")
    page.tab("jobs")
    page.click("#jobs-refresh")
    page.wait(lambda: len(page.all("#jobs-table tbody tr td")) > 3 or None, 60, "a job row")
    tall = page.js("return Array.from(document.querySelectorAll("
                   "'#jobs-table tbody td')).filter(c => c.offsetParent && "
                   "c.innerText.trim() && c.getBoundingClientRect().height > "
                   "2.2 * parseFloat(getComputedStyle(c).fontSize) * 1.6)"
                   ".map(c => c.innerText)")
    assert not tall, f"cells wrapped line after line: {tall}"
    assert page.no_horizontal_scroll()
    # dates in the one people's form of every tab, in the page's language
    table = page.text("#jobs-table")
    assert len(re.findall(DATE_FORM[page.lang], table)) >= 2, table  # created, updated
    page.shot("phone-jobs")
