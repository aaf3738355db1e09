"""The page speaks its language: Gradio's own words and ours, none of our English on the
Japanese page."""

from __future__ import annotations

import pytest

from tests.browser.checks import english_shown
from tests.browser.page import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_gradio_own_words_in_the_page_language(page: Page) -> None:
    """Gradio's own English that its i18n does not reach, in the page's language: the "⋯"
    tab menu's screen-reader label, and the status tracker's "queue: 1/1 |" and
    "processing |" (seen by recording every text the trackers show while a line is spoken)."""
    menu = page.find(".overflow-menu > button")
    page.wait(lambda: menu.get_attribute("aria-label") == page.word("tabs.more"), 15,
              "the tab menu's label in this language")
    page.js("window.__seen = new Set(); window.__said = new Set();"
            "new MutationObserver(ms => { document.querySelectorAll("
            "\"[data-testid='status-tracker']\").forEach(t => window.__seen.add("
            "t.innerText.trim()));"
            " ms.forEach(m => [m.target, ...m.addedNodes].forEach(n => {"
            " const t = (n.textContent || '').trim();"
            " if (t.length < 80 && /queue|順番待ち/i.test(t)) window.__said.add(t); })); })"
            ".observe(document.body, {subtree: true, childList: true, characterData: true});")
    page.tab("voice")
    page.click("#voice-speak")
    page.audio_shown("voice-audio")
    seen = " · ".join(page.js("return Array.from(window.__seen)"))
    queue, processing = page.word("tracker.queue"), page.word("tracker.processing")
    assert f"{queue}: 1/" in seen or f"{processing} |" in seen, seen
    # the screen reader's announcement of the place in the queue (status.queue_position),
    # outside the tracker: Gradio has it in English only
    said = " · ".join(page.js("return Array.from(window.__said)"))
    if page.lang == "ja":
        assert "queue:" not in seen and "processing |" not in seen, seen
        assert "In queue" not in said, said
    page.shot("voice-spoken")



@pytest.mark.parametrize("page", ["ja"], indirect=True)
def test_japanese_page_shows_none_of_our_english(page: Page) -> None:
    """Walk every tab (accordions open) of the Japanese page: no English string of our own
    catalogue is on screen."""
    seen: dict[str, str] = {}
    for tab in ("message", "voice", "image", "prosody", "bgm", "video", "jobs"):
        page.tab(tab)
        for button in page.all("button.label-wrap:not(.open)"):
            if button.is_displayed():
                page.js("arguments[0].click()", button)
        page.shot(f"ja-{tab}")
        seen.update({k: f"{v} (on the {tab} tab)" for k, v in english_shown(page).items()})
    assert not seen, f"English on the Japanese page: {seen}"
