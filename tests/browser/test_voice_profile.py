"""A voice profile made and heard in the browser, in English and in Japanese."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.ui.voice_serving import _change
from tests.browser.checks import DATE_FORM, JAPANESE, check_language, chosen_radio
from tests.browser.page import SLOW, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_a_voice_profile_made_and_heard_in_the_browser(page: Page, tmp_path: Path) -> None:
    """The Voice tab as a newcomer meets it: it opens in the page's language (sample text,
    language, a voice that speaks it); three recordings make a profile under one progress
    bar, whose summary says in people's words how near its voice comes; after a reload the
    profile is in every list without "Refresh"; speaking with it names what made the voice
    in the page's language, with no engine diagnostics and no ids."""
    import numpy as np

    from models.base import Audio
    from models.voice.matching import MatchParams, apply_match
    from tests.fixtures.voice import RATE, SENTENCES, ojt_speech, wav_bytes

    other = {"en": "ja", "ja": "en"}[page.lang]
    page.tab("voice")
    assert page.find("#voice-text textarea").get_attribute("value") == page.word(
        "voice.sample")
    assert chosen_radio(page, "voice-language") == page.lang
    placeholder = page.find("#message-text textarea").get_attribute("placeholder") or ""
    assert placeholder and (page.lang == "ja") == bool(re.search(JAPANESE, placeholder)), \
        placeholder
    # switching the language picks a voice that speaks it (no "does not speak" error)
    page.click(f"#voice-language input[value='{other}']")
    page.wait(lambda: f"· {other} ·" in page.find("#voice-voice input").get_attribute("value"),
              30, "a voice of the other language")
    page.click("#voice-speak")
    page.audio_shown("voice-audio")
    assert not page.all(".toast-body.error"), page.toasts()

    clips = []
    for n, sentence in enumerate(SENTENCES):  # "a person": a voice no built-in one has
        voice = apply_match(Audio(ojt_speech(sentence), RATE), MatchParams(1.15, 200.0))
        clip = tmp_path / f"take{n + 1}.wav"
        clip.write_bytes(wav_bytes(np.asarray(voice.samples)))
        clips.append(str(clip))
    name = f"Browser {page.lang}"
    page.click("#voice-profiles .label-wrap")
    page.type_into("voice-profile-name", name)
    field = page.wait(lambda: page.find("#voice-profile-files input[type='file']"), 60,
                      "the recordings field")
    field.send_keys("\n".join(clips))
    page.wait(lambda: len(page.all("#voice-profile-files tr, #voice-profile-files .file"))
              >= 3 or None, 60, "three recordings listed")
    page.click("#voice-profile-create")
    bars = "#voice-profiles [data-testid='status-tracker']:not(.hide) .progress-text"
    shown = page.wait(lambda: len(page.all(bars)) or None, SLOW, "the profile's progress")
    page.shot("profile-progress")
    assert shown == 1, f"{shown} progress bars for one profile"
    summary = " ".join(page.wait(lambda: (lambda text: text if "✅" in text else None)(
        page.text("#voice-profile-result")), SLOW, "the new profile").split())
    assert page.word("voice.not_cloning") in summary
    made = [p for p in httpx.get(f"{page.url}/api/voice/profiles", timeout=30)
            .json()["data"]["profiles"] if p["name"] == name]
    serving = made[0]["serving"][page.lang]  # measured on three axes, per language
    served = serving["serves"]
    assert page.word("serving.title") in summary, summary
    assert page.word("serving.near") in summary and page.word("serving.words") in summary
    # in a few words, with a strength other than 100 % (its no-break space read as a space)
    change = " ".join(_change(served, page.lang).split())
    assert change in summary, (change, summary)
    for raw in (made[0]["id"], ":0.", "timbre_filter", "formant_warp", "voice_matching",
                "distillmos"):
        assert raw not in summary, (raw, summary)
    serves = served["converter"] or "source_voice"
    page.shot("profile-made")
    # the table reads whole: no header broken inside a word, each figure on one line
    assert page.broken_in("#voice-profile-result table") == []
    assert page.fits_width("#voice-profile-result table"), "the table needs scrolling"
    assert page.no_horizontal_scroll()

    page.open()  # a reload: the profile is in the Voice tab's lists at once
    page.tab("voice")
    page.click("#voice-profiles .label-wrap")
    page.wait(lambda: name in page.text("#voice-profile-list"), 30, "the profile listed")
    listed = page.text("#voice-profile-list")  # dated as the Jobs table and the history are
    assert re.search(DATE_FORM[page.lang], listed), listed
    page.find("#voice-voice input").click()
    options = page.wait(lambda: [o for o in page.all("#voice-voice li[role='option']")
                                 if name in o.text] or None, 30,
                        "the profile among the voices")
    options[0].click()
    page.click("#voice-speak")
    page.audio_shown("voice-audio")
    wanted = page.word("serving.near")  # the line says how the profile's voice was chosen
    note = page.wait(lambda: (lambda text: text if wanted in text else None)(
        page.text("#voice-engine")), SLOW, "the engine line naming the converter")
    assert change in " ".join(note.split()), (change, note)
    for raw in ("skipped", "python -m", "STUDIO_", "/models", serves, served["voice"]):
        assert raw not in note, (raw, note)
    assert "openvoice_" not in page.body_text()
    page.shot("profile-speech")
    check_language(page)
    assert not page.all(".toast-body.error"), page.toasts()
