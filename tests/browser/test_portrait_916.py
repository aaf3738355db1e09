"""A 9:16 message made through the page from a head-and-shoulders photo is not pasted on."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.browser.checks import HALO_MAX, HEAD_AND_SHOULDERS, SEAM_MAX, TEXT
from tests.browser.page import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]

@pytest.mark.parametrize("page", ["en", "ja"], indirect=True)
def test_a_9_16_message_is_not_pasted_on(page: Page, tmp_path: Path) -> None:
    """A 9:16 message from a head-and-shoulders photo, chosen in the page, judged on the
    video it makes: no straight seam where the photo ends (the portrait came out as a lighter
    rectangle on its blurred backdrop, ended by a hard line at the waist), no pale halo
    along the person's outline. The same judge catches the same photo pasted on, and a
    halo laid along the outline, so it can fail."""
    import numpy as np
    from PIL import Image

    from models.cutout.mediapipe import MediapipeCutout
    from tests.browser.judge import frame_of, halo, pasted_on, straight_seam

    page.upload("message-photo", HEAD_AND_SHOULDERS)
    page.wait(lambda: page.all("#message-photo img"), 60, "the photo preview")
    page.click("#message-size input[value='720x1280']")
    page.type_into("message-text", TEXT[page.lang])
    page.click("#message-generate")
    src, _ = page.video_ready("message-video")
    page.shot("message-9-16")
    video = tmp_path / "message.mp4"
    video.write_bytes(httpx.get(src, timeout=120).content)
    segment = MediapipeCutout().segment
    for index in (0, 40):  # the first frame, and one with the head moved
        frame = frame_of(video, index)
        assert frame.shape[:2] == (1280, 720), frame.shape
        Image.fromarray(frame).save(page.shots / f"frame-{index}.png")  # to look at
        share, axis, where = straight_seam(frame)
        assert share < SEAM_MAX, f"a straight seam {share:.0%} long at {axis} {where}"
        mask = segment(frame)
        assert mask.mean() > 0.1, "the person is in the frame"
        glow = halo(frame, mask)
        assert glow < HALO_MAX, f"a pale halo {glow:.1f} grey levels along the outline"

    photo = np.asarray(Image.open(HEAD_AND_SHOULDERS).convert("RGB"))
    control = pasted_on(photo, (720, 1280))
    Image.fromarray(control).save(page.shots / "control-pasted-on.png")
    assert straight_seam(control)[0] > SEAM_MAX  # the judge sees a pasted-on rectangle
    import cv2

    person = (mask > 0.5).astype(np.uint8)
    grow = lambda r: cv2.dilate(person, np.ones((2 * r + 1, 2 * r + 1), np.uint8))  # noqa: E731
    ring = (grow(7) > 0) & ~(person > 0)
    haloed = frame.astype(np.int16)
    haloed[ring] += 30  # a pale rim along the outline
    assert halo(np.clip(haloed, 0, 255).astype(np.uint8), mask) > HALO_MAX
