"""The walk a person takes through the studio, in a real browser, in English and in Japanese:
every tab makes its output, errors are readable and the page keeps working. Screenshots of
each step land in tests/browser/out/<test>/ (git-ignored) to look at."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.browser.checks import DATE_FORM, PORTRAIT, TEXT, check_language, step_words
from tests.browser.page import SLOW, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_walk(page: Page, group_photo: Path, tmp_path: Path) -> None:
    lang = page.lang
    page.shot("opened")

    # -- Message: photo + text, progress while it runs, a video that plays, in the history
    page.upload("message-photo", PORTRAIT)
    page.wait(lambda: page.all("#message-photo img"), 60, "the photo preview")
    page.type_into("message-text", TEXT[lang])
    page.wait(lambda: f"{len(TEXT[lang])} / 1000" in page.text("#message-count"), 30,
              "the character count")
    page.click("#message-generate")
    progress = page.wait(lambda: (lambda s: s if any(w in s for w in step_words(lang))
                                  and "%" in s else None)(page.progress_text("message-video")),
                         SLOW, "progress text")
    page.shot("message-progress")
    assert re.search(r"\d+(\.\d)?%", progress), progress
    # the same bar right under the Generate button, where a scrolled-down page looks
    page.wait(lambda: "%" in page.progress_text("message-progress"), 30, "the bar by the button")
    assert page.find("#message-progress").rect["y"] > page.find("#message-generate").rect["y"]
    src, duration = page.video_ready("message-video")
    assert duration > 0.5
    assert page.play("message-video") > 0.3
    details = page.wait(lambda: page.text("#message-details"), 60, "how it was made")
    assert page.word("message.note_voice") in details
    assert page.word("message.note_took") in details  # the seconds say what they are
    assert "⚠" not in details, details  # a default install: its engines are the defaults
    named = unquote(src.rsplit("/", 1)[-1])  # a download named for people, not a hash
    assert re.fullmatch(re.escape(page.word("download.message")) + r"-\d{4}-\d\d-\d\d-\d{4}\.mp4",
                        named), named
    page.shot("message-done")
    first_words = TEXT[lang][:10]
    page.click("#message-history button")  # the accordion opens
    page.wait(lambda: first_words in page.text("#message-gallery"), 60, "the history item")
    assert re.search(DATE_FORM[lang], page.text("#message-gallery")), page.text("#message-gallery")
    thumbs = page.all("#message-gallery .thumbnail-item")
    assert thumbs
    thumbs[0].click()  # replays that message
    page.video_ready("message-replay")
    page.shot("message-history")
    check_language(page)

    # -- a second run: the old video goes at once; Cancel ends in a neutral note
    page.click("#message-generate")
    page.wait(lambda: page.video_in("message-video") is None, 30, "the old video cleared")
    page.wait(lambda: "%" in page.progress_text("message-video"), SLOW, "second run progress")
    page.click("#message-cancel")
    cancelled = page.word("message.cancelled")
    page.wait(lambda: cancelled in page.text("#message-status"), 120, "the cancelled note")
    page.wait(lambda: "%" not in page.progress_text("message-video"), 60, "progress gone")
    assert not page.all(".toast-body.error"), page.toasts()
    assert page.video_in("message-video") is None
    page.shot("message-cancelled")
    check_language(page)

    # -- Voice: two voices, each a player with a length
    page.tab("voice")
    page.click("#voice-speak")
    first = page.audio_shown("voice-audio")
    assert page.duration_of(first) > 0.5
    engine_line = page.text("#voice-engine")
    assert page.word("voice.engine") in engine_line
    page.find("#voice-voice input").click()
    options = page.wait(lambda: page.all("#voice-voice li[role='option']") or None, 30,
                        "voice choices")
    assert len(options) >= 2
    options[1].click()
    page.click("#voice-speak")
    second = page.audio_shown("voice-audio", previous=first)
    assert page.duration_of(second) > 0.5
    page.shot("voice")
    check_language(page)
    speech = tmp_path / "speech.wav"
    speech.write_bytes(httpx.get(second, timeout=60).content)

    # -- Image: detect two people, a click chooses one, cut out and frame
    page.tab("image")
    page.upload("image-photo", group_photo)
    page.wait(lambda: page.all("#image-photo img"), 60, "the group photo")
    page.click("#image-detect")
    thumbs = page.wait(lambda: (lambda found: found if len(found) >= 2 else None)(
        page.all("#image-people button img, #image-people .thumbnail-item img")),
        SLOW, "two people found")
    page.wait(lambda: len(page.checked("image-selected")) == 1, 30, "the first one ticked")
    boxes = page.all("#image-selected label")
    assert len(boxes) >= 2
    second_person = boxes[1].text.strip()
    thumbs[1].click()
    page.wait(lambda: page.checked("image-selected") == [second_person], 30,
              "only the clicked person chosen")
    thumbs[1].click()  # a second click keeps that one person (it does not untick)
    page.wait(lambda: page.checked("image-selected") == [second_person], 30, "still chosen")
    page.click("#image-cutout")
    page.image_shown("image-framed")
    page.shot("image")
    check_language(page)

    # -- Prosody: the Voice tab's speech, a preset, the after-player and the plot
    page.tab("prosody")
    page.click("#prosody-latest")
    page.wait(lambda: page.text("#prosody-input time#duration"), 60, "the latest voice")
    page.click("#preset-happy")
    happy = page.word("mood.happy")
    page.wait(lambda: page.find("#prosody-emotion input").get_attribute("value") == happy, 30,
              "the preset chosen")
    page.click("#prosody-apply")
    after = page.audio_shown("prosody-after")
    assert page.duration_of(after) > 0.5
    page.image_shown("prosody-plot")
    said = page.wait(lambda: page.text("#prosody-said"), 60, "what the change did")
    assert happy in said and page.word("prosody.said_length").split(" ")[0] in said, said
    page.shot("prosody")
    check_language(page)

    # -- BGM: the latest voice, mixed, a player and the ducking plot
    page.tab("bgm")
    page.click("#bgm-latest")
    page.wait(lambda: page.text("#bgm-voice time#duration"), 60, "the latest voice")
    page.click("#bgm-mix")
    mixed = page.audio_shown("bgm-mixed")
    assert page.duration_of(mixed) > 0.5
    page.image_shown("bgm-envelope")
    broken = page.js(  # a one-word header on two lines, or a header cut off
        "return Array.from(document.querySelectorAll('#bgm-tracks th')).filter(th => {"
        " if (!th.offsetParent || !th.innerText.trim()) return false;"
        " const w = document.createTreeWalker(th, NodeFilter.SHOW_TEXT); const tops = new Set();"
        " while (w.nextNode()) { if (!w.currentNode.textContent.trim()) continue;"
        "  const r = document.createRange(); r.selectNodeContents(w.currentNode);"
        "  Array.from(r.getClientRects()).filter(x => x.width > 1)"
        "   .forEach(x => tops.add(Math.round(x.top))) }"
        " return (!th.innerText.trim().includes(' ') && tops.size > 1)"
        "   || th.scrollWidth > th.clientWidth + 1 }).map(th => th.innerText)")
    assert not broken, f"headers broken or cut: {broken}"
    said = page.wait(lambda: page.text("#bgm-said"), 60, "what the mix is")
    assert page.word("bgm.said_loudness").split(" ")[0] in said, said
    page.shot("bgm")
    check_language(page)

    # -- Video: portrait + the downloaded speech, a preview, then the render
    page.tab("video")
    page.upload("video-portrait", PORTRAIT)
    page.wait(lambda: page.all("#video-portrait img"), 60, "the portrait")
    page.upload("video-audio", speech)
    page.wait(lambda: page.text("#video-audio time#duration"), 60, "the speech")
    page.click("#video-preview")
    preview_src, _ = page.video_ready("video-result")
    page.click("#video-render")
    page.video_ready("video-result", previous=preview_src)
    assert page.play("video-result") > 0.3
    page.shot("video")
    check_language(page)

    # -- Jobs: every job just made is listed, with its kind and state in this language
    page.tab("jobs")
    page.click("#jobs-refresh")
    kinds = ["message.generate", "voice.synthesize", "image.detect", "image.cutout",
             "prosody.adjust", "bgm.mix", "video.preview", "video.render"]
    wanted = [page.word(f"kind.{k}") for k in kinds]
    table = page.wait(lambda: (lambda s: s if all(w in s for w in wanted) else None)(
        page.text("#jobs-table")), 60, "every kind of job listed")
    assert page.word("status.completed") in table and page.word("status.cancelled") in table
    page.shot("jobs")
    check_language(page)
    assert page.fits_width("#jobs-table .table-wrap, #jobs-table", slack=2), \
        "the jobs table needs sideways scrolling at 1400 px"
    assert page.js(
        "return Array.from(document.querySelectorAll('#jobs-table th')).every("
        "th => th.getBoundingClientRect().height < 60)"), "a header wraps letter by letter"
    # the kind filter: "message" shows the message jobs and nothing else
    page.find("#jobs-kind input").click()
    message_kind = page.word("kind.message.generate")
    option = page.wait(lambda: next((o for o in page.all("#jobs-kind li[role='option']")
                                     if o.text.strip().endswith(message_kind)), None),
                       30, "the message kind in the filter")
    option.click()
    page.wait(lambda: (lambda s: s if message_kind in s
                       and page.word("kind.voice.synthesize") not in s else None)(
        page.text("#jobs-table")), 60, "only message jobs")
    page.shot("jobs-message-filter")
    assert not page.all(".toast-body.error"), page.toasts()
