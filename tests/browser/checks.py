"""What the browser tests check on every page: errors readable in the page's language, none
of our English left on the Japanese page, the date form, and the words of each step."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from app.i18n import CATALOGUE
from tests.browser.page import Page

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg"
HEAD_AND_SHOULDERS = ROOT / "tests" / "fixtures" / "data" / "portrait_smile_teeth.jpg"
SEAM_MAX = 0.3  # of the frame's width (height): a pasted-on photo's edge measured 0.52
HALO_MAX = 6.0  # grey levels brighter just outside the outline than further out
TEXT = {"en": "Happy birthday! Have a wonderful year.", "ja": "お誕生日おめでとう！"}
STEPS = [key for key in CATALOGUE["en"] if key.startswith("step.")]


def step_words(lang: str) -> list[str]:
    return [CATALOGUE[lang][key] for key in STEPS]


def assert_error_toast(page: Page, *, code: str | None = None) -> str:
    """An error toast titled in the page's language, readable, no traceback; its text."""
    text = page.wait(lambda: next((t.text for t in page.all(".toast-body.error")
                                   if t.text.strip()), None), 60, "an error toast")
    title = page.js("const t = document.querySelector('.toast-body.error .toast-title');"
                    "return t.innerText.trim() && getComputedStyle(t).fontSize !== '0px' ? "
                    "t.innerText : getComputedStyle(t, '::before').content")
    assert page.word("error.title") in title, (title, text)
    assert "Traceback" not in text and "Exception" not in text, text
    if code:
        assert code in text, text
    return text


def check_language(page: Page) -> None:
    """On the Japanese page, the outputs just made (notes, tables, progress) are Japanese."""
    if page.lang == "ja":
        seen = english_shown(page)
        assert not seen, f"English on the Japanese page: {seen}"



def our_english() -> dict[str, str]:
    """Every English fragment of our own catalogue that Japanese does not share, by key."""
    from app.ui.text import _TABLES

    english = {}
    for key, en in _TABLES["en"].items():
        ja = _TABLES["ja"].get(key, "")
        text = re.sub(r"[#*`]", "", en).strip()
        if en == ja or not re.search(r"[A-Za-z]{3,}", text):
            continue
        for fragment in re.split(r"\{[^}]*\}", text):
            fragment = fragment.strip(" :·()")
            if re.search(r"[A-Za-z]{3,}", fragment):
                english[fragment] = key
    return english


def english_shown(page: Page) -> dict[str, str]:
    """Our English on the page as it is now, with what surrounds it. Content is left out:
    music titles and ids, engine names and the engines' own diagnostics, and the JSON data
    panels (``.studio-data``: the API's own field names, shown as data)."""
    from pipelines.sound.tracks import builtin_tracks

    content = [str(v) for tr in builtin_tracks() for v in (tr.id, tr.title, tr.licence)]
    engines = httpx.get(page.url + "/health", timeout=30).json()["data"]["engines"]
    content += [str(e[field]) for chain in engines.values() for e in chain
                for field in ("name", "reason")]
    body = page.body_text()
    content += page.js("return Array.from(document.querySelectorAll('.studio-data'))"
                       ".map(e => e.innerText)")
    for text in sorted(content, key=len, reverse=True):
        body = body.replace(text.strip(), " ") if text.strip() else body
    seen = {}
    for fragment, key in our_english().items():
        found = re.search(r"(?<![A-Za-z])" + re.escape(fragment) + r"(?![A-Za-z])", body)
        if found:
            around = body[max(found.start() - 30, 0):found.end() + 30].replace("\n", " ")
            seen[fragment] = f"{key}: ...{around}..."
    return seen



JAPANESE = r"[\u3040-\u30ff\u4e00-\u9fff]"
DATE_FORM = {"en": r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d\d:\d\d",  # app.ui.text.shown_time
             "ja": r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d"}


def chosen_radio(page: Page, elem_id: str) -> str | None:
    return next((box.get_attribute("value") for box in page.all(f"#{elem_id} input")
                 if box.is_selected()), None)
