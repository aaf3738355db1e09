"""Person detection, selection, and framing geometry and backgrounds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.chain import FallbackChain
from models.cutout.mediapipe import MediapipeCutout
from models.detect.person import PersonDetector, threshold_for
from models.errors import InvalidInput
from models.refine.closed_form import ClosedFormRefiner
from pipelines.image import portrait as pipe
from pipelines.image.framing import (
    EYE_LINE,
    FramingOptions,
    builtin_backgrounds,
    frame,
)
from tests.fixtures import portraits

DETECTORS = FallbackChain("person_detection", [PersonDetector()])


def test_single_portrait_has_one_person_with_a_face(composite) -> None:
    people, report = pipe.detect(composite.image, DETECTORS)
    assert len(people) == 1
    person = people[0]
    assert person.face_bbox is not None
    assert person.confidence > 0.5
    fx0, fy0, fx1, fy1 = person.face_bbox
    # the figure's face is around x 160-370, y 120-330 in the source photo
    assert 140 < (fx0 + fx1) / 2 < 390
    assert 100 < (fy0 + fy1) / 2 < 330
    assert report.operation == "person_detection"


def test_group_photo_has_two_people_largest_first(group) -> None:
    people, _ = pipe.detect(group, DETECTORS)
    assert len(people) == 2
    areas = [(p.face_bbox[2] - p.face_bbox[0]) * (p.face_bbox[3] - p.face_bbox[1])
             for p in people]
    assert areas[0] > areas[1]
    assert people[0].bbox[0] < people[1].bbox[0]  # the bigger one stands on the left
    assert pipe.select(people) == [people[0]]
    assert pipe.select(people, [1, 0]) == [people[1], people[0]]


def test_no_person_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput) as info:
        pipe.detect(portraits.no_person_image(), DETECTORS)
    assert info.value.code == "IMAGE_NO_PERSON"
    assert info.value.message_ja


@pytest.mark.parametrize("value", [0.0, 0.05, 0.95, 1.5])
def test_sensitivity_outside_range_is_refused(composite, value: float) -> None:
    with pytest.raises(InvalidInput) as info:
        pipe.detect(composite.image, DETECTORS, sensitivity=value)
    assert info.value.code == "IMAGE_INVALID_SENSITIVITY"


def test_higher_sensitivity_lowers_the_threshold() -> None:
    assert threshold_for(0.9) < threshold_for(0.5) < threshold_for(0.1)


def test_unknown_person_id_is_refused(composite) -> None:
    people, _ = pipe.detect(composite.image, DETECTORS)
    with pytest.raises(InvalidInput) as info:
        pipe.select(people, [7])
    assert info.value.code == "IMAGE_INVALID_SELECTION"


def test_cutout_of_one_person_excludes_the_other(group) -> None:
    people, _ = pipe.detect(group, DETECTORS)
    chain = FallbackChain("cutout", [MediapipeCutout()])
    matte, report = pipe.cutout(group, [people[1]], chain, people=people)
    assert report.operation == "background_removal"
    assert report.method == "mediapipe"
    x0, y0, x1, y1 = people[0].face_bbox
    assert matte[y0:y1, x0:x1].max() < 0.05  # the other person's face is cut away
    x0, y0, x1, y1 = people[1].face_bbox
    assert matte[y0:y1, x0:x1].mean() > 0.8


def _blank_subject(size=(400, 600)):
    w, h = size
    alpha = np.zeros((h, w), np.float32)
    alpha[150:, 100:300] = 1.0
    alpha[60:170, 150:250] = 1.0
    fg = np.zeros((h, w, 3), np.float32)
    fg[...] = (0.8, 0.3, 0.2)
    image = Image.new("RGB", (w, h), (20, 200, 40))
    return image, alpha, fg


@pytest.mark.parametrize(("aspect", "expected"),
                         [("1:1", (512, 512)), ("9:16", (288, 512)), ("16:9", (512, 288))])
def test_eyes_at_forty_percent_and_face_centred(aspect: str, expected: tuple[int, int]) -> None:
    image, alpha, fg = _blank_subject()
    face = (150, 60, 250, 170)
    eyes = ((180.0, 100.0), (220.0, 100.0))
    framed, face_out = frame(image, alpha, fg, face=face, eyes=eyes, person=(100, 60, 300, 600),
                             options=FramingOptions(aspect=aspect))
    assert framed.size == expected
    assert framed.mode == "RGBA"
    w, h = expected
    fx0, fy0, fx1, fy1 = face_out
    assert abs((fx0 + fx1) / 2 - w / 2) <= 2
    eye_y = fy0 + (100 - 60) / (170 - 60) * (fy1 - fy0)
    # the person reaches the photo's bottom, so tall frames may zoom in; eyes stay at 40%
    assert abs(eye_y / h - EYE_LINE) < 0.02
    corner = np.asarray(framed)[0, 0]
    assert corner[3] == 0  # transparent background


def test_backgrounds_solid_blur_builtin_upload() -> None:
    image, alpha, fg = _blank_subject()
    args = dict(face=(150, 60, 250, 170), eyes=None, person=(100, 60, 300, 600))
    solid, _ = frame(image, alpha, fg, options=FramingOptions(
        background="solid", background_color="#0000ff"), **args)
    assert solid.mode == "RGB"
    assert solid.getpixel((2, 2)) == (0, 0, 255)
    blur, _ = frame(image, alpha, fg, options=FramingOptions(background="blur"), **args)
    r, g, b = blur.getpixel((2, 2))
    assert g > 150
    assert r < 60
    upload = Image.new("RGB", (50, 50), (250, 250, 0))
    up, _ = frame(image, alpha, fg, options=FramingOptions(
        background="upload", background_image=upload), **args)
    assert up.getpixel((2, 2)) == (250, 250, 0)
    first = builtin_backgrounds()[0]["id"]
    built, _ = frame(image, alpha, fg, options=FramingOptions(
        background="builtin", background_id=first), **args)
    assert built.mode == "RGB"


def test_canvas_above_a_close_crop_is_background_not_smeared_head() -> None:
    """A head that touches the photo's top edge: the frame extends the canvas above the
    photo (the head is not zoomed until cut) with the photo's background, painted-out, not
    with the head's edge pixels stretched upwards."""
    w, h = 400, 600
    image = np.zeros((h, w, 3), np.uint8)
    image[...] = (20, 200, 40)  # green background
    alpha = np.zeros((h, w), np.float32)
    alpha[0:170, 150:250] = 1.0  # head cut by the top edge
    alpha[150:, 100:300] = 1.0
    image[alpha > 0] = (230, 40, 30)  # a red person
    fg = image.astype(np.float32) / 255.0
    framed, face_out = frame(Image.fromarray(image), alpha, fg, face=(150, 0, 250, 170),
                             eyes=((180.0, 50.0), (220.0, 50.0)), person=(100, 0, 300, 600),
                             options=FramingOptions(background="blur"))
    assert face_out is not None and face_out[1] > 40  # room above the head: not zoomed in
    above = np.asarray(framed)[: face_out[1] - 10, face_out[0]:face_out[2]].reshape(-1, 3)
    r, g, _ = above.astype(int).mean(axis=0)
    assert g > 150 and r < 80, (r, g)  # green background above the head, no red column


def test_padding_leaves_a_transparent_margin() -> None:
    image, alpha, fg = _blank_subject()
    framed, _ = frame(image, alpha, fg, face=(150, 60, 250, 170), eyes=None,
                      person=(100, 60, 300, 600), options=FramingOptions(padding=100))
    a = np.asarray(framed)[..., 3]
    assert a[:100].max() == 0
    assert a[:, :100].max() == 0
    assert a[:, -100:].max() == 0
    assert a[100:].max() == 255


@pytest.mark.parametrize(("raw", "field"), [
    ({"aspect": "4:3"}, "aspect"), ({"size": 64}, "size"), ({"padding": 501}, "padding"),
    ({"padding": 250}, "padding"), ({"background": "plaid"}, "background"),
    ({"background": "solid", "background_color": "nope"}, "background_color"),
    ({"background": "builtin", "background_id": "nope"}, None),
    ({"background": "upload"}, "background_image"),
])
def test_bad_framing_options_are_refused(raw: dict, field: str | None) -> None:
    with pytest.raises(InvalidInput) as info:
        FramingOptions.parse(raw)
    assert info.value.code == "IMAGE_INVALID_FRAMING"
    assert info.value.message_ja
    assert info.value.details.get("field") == field


def test_at_least_five_builtin_backgrounds_ship() -> None:
    from pipelines.image.framing import BACKGROUNDS_DIR

    entries = builtin_backgrounds()
    assert len(entries) >= 5
    for entry in entries:
        with Image.open(BACKGROUNDS_DIR / entry["file"]) as img:
            assert img.size == (entry["width"], entry["height"])
        assert entry["name"]
        assert entry["name_ja"]


@pytest.mark.slow
def test_prepare_portrait_end_to_end(composite) -> None:
    result = pipe.prepare_portrait(
        composite.image, detectors=DETECTORS,
        cutout_chain=FallbackChain("cutout", [MediapipeCutout()]),
        refiner_chain=FallbackChain("refiner", [ClosedFormRefiner()]))
    assert result.image.size == (512, 512)
    assert result.image.mode == "RGBA"
    assert [r.operation for r in result.reports] == list(pipe.OPERATIONS)
    x0, y0, x1, y1 = result.face_box
    assert abs((x0 + x1) / 2 - 256) < 20
    alpha = np.asarray(result.image)[..., 3]
    assert alpha[(y0 + y1) // 2, (x0 + x1) // 2] == 255
    assert alpha[5, 5] == 0
    assert portraits.iou(result.matte, composite.alpha) > 0.93


def test_exif_orientation_is_honoured_before_detection(composite) -> None:
    import io

    from pipelines.media import decode_image

    stored = composite.image.transpose(Image.Transpose.ROTATE_90)  # as a phone sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=92, exif=exif)
    upright = decode_image(buffer.getvalue())
    assert upright.size == composite.image.size
    people, _ = pipe.detect(upright, DETECTORS)
    assert len(people) == 1
    fx0, fy0, fx1, fy1 = people[0].face_bbox
    assert 140 < (fx0 + fx1) / 2 < 390
    assert 100 < (fy0 + fy1) / 2 < 330


class _PromptedRefiner:
    """Stands in for a promptable segmentation refiner: returns the matte as it came."""

    name = "prompted"
    prompted = True

    def available(self) -> tuple[bool, str]:
        return True, "test double"

    def refine(self, image, matte, box=None):
        return matte

    def close(self) -> None:
        pass


def test_refinement_notes_when_an_unprompted_refiner_stood_in(composite) -> None:
    people, _ = pipe.detect(composite.image, DETECTORS)
    matte = composite.alpha.astype(np.float32)
    _, classical = pipe.refine(composite.image, matte, people[:1],
                               FallbackChain("refiner", [ClosedFormRefiner()]))
    assert classical.method == "closed_form"
    assert "SAM2" in classical.details["note"]
    _, prompted = pipe.refine(composite.image, matte, people[:1],
                              FallbackChain("refiner", [_PromptedRefiner()]))
    assert prompted.method == "prompted"
    assert "note" not in prompted.details


def test_person_detection_is_a_configured_capability(tmp_path) -> None:
    from pydantic import ValidationError

    from app.config import Settings
    from models.registry import CAPABILITIES, DEFAULT_ORDER

    assert DEFAULT_ORDER["person_detection"] == ("mediapipe",)
    assert "person_detection" in CAPABILITIES
    assert Settings(data_dir=tmp_path).backends("person_detection") == ["mediapipe"]
    with pytest.raises(ValidationError, match="STUDIO_PERSON_DETECTION_BACKENDS"):
        Settings(data_dir=tmp_path, person_detection_backends="nope")


def test_blur_backdrop_is_the_painted_out_background_and_the_body_fades_at_the_photo_end(
        ) -> None:
    """A 9:16 frame over a blurred backdrop, running on below a head-and-shoulders photo:
    beside the head the backdrop is the photo's background (blurring the photo itself spread
    the person into a pale glow around them), and where the photo ends the body fades into
    the backdrop instead of stopping in a hard line over a smear of itself."""
    w, h = 600, 420
    image = np.zeros((h, w, 3), np.uint8)
    image[...] = (20, 200, 40)  # green background
    alpha = np.zeros((h, w), np.float32)
    alpha[80:230, 250:350] = 1.0  # head
    alpha[230:, 170:430] = 1.0  # shoulders, on to the photo's bottom
    image[alpha > 0] = (235, 225, 215)  # a pale person
    fg = image.astype(np.float32) / 255.0
    # the person box stops short of the bottom, so the frame does not zoom in to the photo
    framed, face_out = frame(Image.fromarray(image), alpha, fg, face=(250, 80, 350, 230),
                             eyes=((280.0, 140.0), (320.0, 140.0)), person=(170, 80, 430, 380),
                             options=FramingOptions(aspect="9:16", size=720, background="blur"))
    pixels = np.asarray(framed).astype(int)
    assert face_out is not None
    fx0, fy0, fx1, fy1 = face_out
    gap = (fx1 - fx0) // 3  # a third of a face beside the head: background, no glow
    beside = pixels[fy0 + 10:fy1 - 10, fx1 + 6:fx1 + gap].reshape(-1, 3)
    glow = np.abs(beside - np.array([20, 200, 40])).mean()
    assert glow < 12, glow  # the background's own green, not tinted by the pale person
    # the photo's last row in the frame, and the body's columns
    scale = (fy1 - fy0) / (230 - 80)
    edge = int(face_out[1] + (h - 80) * scale)
    assert edge < pixels.shape[0] - 40, "the frame runs on below the photo"
    middle = pixels.shape[1] // 2
    below = pixels[edge + 10:edge + 40, middle - 20:middle + 20].reshape(-1, 3).mean(axis=0)
    assert below[1] > below[0] + 60, below  # the backdrop, not the body smeared downwards
    column = pixels[edge - 60:edge + 10, middle].astype(float)
    steps = np.abs(np.diff(column, axis=0)).max()
    assert steps < 40, steps  # a fade, not a line across the waist


@pytest.mark.parametrize("aspect", ["1:1", "9:16", "16:9"])
def test_whole_head_stays_in_frame_when_the_photo_shows_it(aspect: str) -> None:
    """A person who reaches the photo's bottom edge makes tall frames zoom in, but never
    past the top of a head the photo shows (the crown keeps its margin); a photo that cuts
    the head itself is framed as before."""
    from pipelines.image.framing import CROWN_ABOVE_EYES, HEAD_MARGIN, layout

    options = FramingOptions(aspect=aspect)
    face = (150, 200, 250, 310)  # the crown ~95 px above the eyes, the photo's top 150 above
    eyes = ((180.0, 240.0), (220.0, 240.0))
    person = (60, 180, 340, 400)  # reaches the bottom of a 400 px photo: zoom in
    scale, _, y0, _, ch, _ = layout(options, face, eyes, person, source_height=400)
    crown = 240.0 - CROWN_ABOVE_EYES * 110
    assert (crown - y0) / scale >= HEAD_MARGIN * ch - 1  # output rows above the crown
    cut = ((150, 5, 250, 115), ((180.0, 45.0), (220.0, 45.0)))  # the photo cuts the head
    scale_cut, _, _, _, _, _ = layout(options, *cut, person=(60, 0, 340, 400),
                                      source_height=400)
    loose, _, _, _, _, _ = layout(options, *cut, person=(60, 0, 340, 400))
    assert scale_cut <= loose  # only the zoom, no crown rule
