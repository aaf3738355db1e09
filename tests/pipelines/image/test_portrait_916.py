"""A 9:16 message from a head-and-shoulders photo: the framed portrait and the built-in
talking head agree, so the video frame is the portrait itself, not the portrait shrunk onto a
blurred copy of itself (a lighter rectangle with hard edges). The browser walk judges the
same on the video a person downloads (tests/browser: test_a_9_16_message_is_not_pasted_on)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.talking_head.face_mesh import detect_landmarks
from models.talking_head.placement import frame_portrait
from pipelines.image.framing import FACE_SHARE_MAX, FramingOptions
from pipelines.image.portrait import prepare_portrait
from tests.browser.judge import pasted_on, straight_seam
from tests.fixtures.video import DATA

PHOTO = DATA / "portrait_smile_teeth.jpg"


def test_head_and_shoulders_in_9_16_is_not_shrunk_onto_a_backdrop(services) -> None:
    photo = Image.open(PHOTO).convert("RGB")
    options = FramingOptions.parse({"aspect": "9:16", "size": 1280, "background": "blur"})
    portrait = prepare_portrait(
        photo, detectors=services.chain("person_detection"), cutout_chain=services.chain("cutout"),
        refiner_chain=services.chain("refiner"), options=options)
    framed = np.asarray(portrait.image.convert("RGB"))
    assert framed.shape[:2] == (1280, 720)
    assert portrait.face_box is not None
    x0, y0, x1, y1 = portrait.face_box
    assert (y1 - y0) / 1280 <= FACE_SHARE_MAX["9:16"] + 0.01
    base, _ = frame_portrait(framed, detect_landmarks(framed), (720, 1280))
    share, axis, where = straight_seam(base)
    assert share < 0.3, f"a straight seam {share:.0%} long at {axis} {where}"
    assert straight_seam(pasted_on(framed, (720, 1280)))[0] > 0.3  # the check can fail
