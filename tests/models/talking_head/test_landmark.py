"""The built-in renderer on a real portrait: faces, mouth, blinks, determinism, MP4 output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.base import Audio, RenderRequest, Speech
from models.errors import Cancelled, InvalidInput
from models.talking_head.face_mesh import LOWER_INNER, UPPER_INNER, detect_landmarks
from models.talking_head.face_rig import FaceRig
from models.talking_head.idle_motion import blink_schedule, idle_track
from models.talking_head.landmark import LandmarkHead
from models.talking_head.placement import frame_portrait
from models.talking_head.warp import FrameControls
from tests.fixtures.video import DATA, ffprobe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine() -> LandmarkHead:
    return LandmarkHead()


@pytest.fixture(scope="module")
def rig(portrait: Image.Image) -> FaceRig:
    rgb = np.asarray(portrait)
    base, points = frame_portrait(rgb, detect_landmarks(rgb), (512, 512))
    return FaceRig(base, points)


def mouth_box(rig: FaceRig) -> tuple[slice, slice]:
    p = rig.points
    x0, x1 = int(p[61, 0]) - 4, int(p[291, 0]) + 4
    y0, y1 = int(p[0, 1]) - 4, int(p[17, 1]) + int(0.4 * rig.mouth_w)
    return slice(y0, y1), slice(x0, x1)


def test_no_face_is_refused(engine: LandmarkHead, no_face_image: Image.Image,
                            short_speech: Speech, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        engine.render(RenderRequest(no_face_image, short_speech, output=tmp_path / "x.mp4"))
    assert info.value.code == "VIDEO_NO_FACE"
    assert info.value.message_ja
    assert not (tmp_path / "x.mp4").exists()


def test_tiny_face_is_refused(portrait: Image.Image) -> None:
    small = portrait.resize((40, 47))
    canvas = Image.new("RGB", (1200, 1200), (90, 110, 130))
    canvas.paste(small, (600, 600))
    with pytest.raises(InvalidInput) as info:
        detect_landmarks(np.asarray(canvas))
    assert info.value.code == "VIDEO_NO_FACE"


@pytest.mark.parametrize("variant", ["mirrored", "tilted", "turned", "small_in_big", "rgba"])
def test_variants_are_rigged(portrait: Image.Image, variant: str, engine: LandmarkHead) -> None:
    if variant == "mirrored":
        img = portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif variant == "tilted":
        img = portrait.rotate(12, resample=Image.Resampling.BICUBIC, fillcolor=(120, 140, 170))
    elif variant == "turned":  # squeeze one side: a slight yaw-like foreshortening
        w, h = portrait.size
        img = portrait.transform((w, h), Image.Transform.PERSPECTIVE,
                                 (1.0, 0.12, -40, 0.0, 1.0, -8, 0.00035, 0.0),
                                 Image.Resampling.BICUBIC)
    elif variant == "small_in_big":
        img = Image.new("RGB", (1600, 1200), (70, 80, 90))
        img.paste(portrait.resize((256, 300)), (1200, 100))
    else:
        img = portrait.convert("RGBA")
        alpha = Image.new("L", img.size, 0)
        alpha.paste(255, (60, 20, img.size[0] - 60, img.size[1]))
        img.putalpha(alpha)
    perf = engine.perform(RenderRequest(img, Speech(Audio(np.zeros(2400, np.float32) + 0.01, 24000))))
    frame = perf.rig.render(FrameControls(open=0.8))
    assert frame.shape == (512, 512, 3)
    # The face is framed near the middle of the output.
    centre = (perf.rig.points[10] + perf.rig.points[152]) / 2
    assert 150 < centre[0] < 362
    assert 150 < centre[1] < 362


def test_mouth_opens_with_shaded_interior_and_closes(rig: FaceRig) -> None:
    ys, xs = mouth_box(rig)
    rest = rig.render(FrameControls()).copy()
    opened = rig.render(FrameControls(open=1.0)).copy()
    closed = rig.render(FrameControls(close=1.0)).copy()
    was_light = rest[ys, xs].mean(axis=2) >= 70
    closed_dark = (closed[ys, xs].mean(axis=2) < 70) & was_light
    # The opened interior is not one flat colour: a cavity gradient and teeth.
    gray = opened[ys, xs].mean(axis=2)
    new_dark = (gray < 70) & was_light
    assert new_dark.sum() > 30
    assert closed_dark.sum() < 0.15 * new_dark.sum()  # pressed lips open no cavity
    assert gray[new_dark].std() > 4
    bright = (gray > 150) & (np.ptp(opened[ys, xs].astype(int), axis=2) < 50)
    assert bright.sum() > 20  # synthetic teeth under the upper lip (closed-mouth photo)
    # Frames outside the head region do not change.
    assert np.array_equal(rest[:, :5], rig.base[:, :5])


def test_photo_teeth_stay_with_the_upper_lip(rig: FaceRig) -> None:
    """An open-mouth photo (made by the rig itself) has visible teeth; opening further must
    keep them right under the upper lip rather than stretched or floating."""
    photo = rig.render(FrameControls(open=0.8)).copy()
    points = detect_landmarks(photo)
    rig2 = FaceRig(photo, points)
    assert rig2.photo_gap > 0.06 * rig2.mouth_w
    assert rig2.photo_teeth
    wider = rig2.render(FrameControls(open=1.0))
    pts = rig2.landmarks_for(FrameControls(open=1.0))
    col = int(pts[13, 0])
    lip_y = pts[13, 1]
    column = wider[int(lip_y) - 3:int(lip_y) + int(0.5 * rig2.mouth_w), col - 2:col + 3].mean(axis=(1, 2))
    first_bright = int(np.argmax(column > 140))
    assert column.max() > 140
    assert first_bright < 0.12 * rig2.mouth_w + 6  # teeth begin right below the upper lip
    assert np.mean([pts[i, 1] for i in UPPER_INNER]) < pts[14, 1]


def _teeth_on_the_lip_line(frame: np.ndarray, pts: np.ndarray, mouth_w: float) -> float:
    """Share of tooth-like (bright, unsaturated) pixels in a thin band along the line where
    the inner lips of ``pts`` meet, between the mouth's corners (inner 80 %)."""
    up, low = pts[UPPER_INNER], pts[LOWER_INNER]
    mid = (up + low) / 2
    order = np.argsort(mid[:, 0])
    x0, x1 = mid[order[0], 0], mid[order[-1], 0]
    xs = np.arange(int(x0 + 0.1 * (x1 - x0)), int(x1 - 0.1 * (x1 - x0)))
    ys = np.interp(xs, mid[order, 0], mid[order, 1])
    half = max(1, int(round(0.03 * mouth_w)))
    band = np.concatenate([frame[int(round(y)) - half:int(round(y)) + half + 1, x]
                           for x, y in zip(xs, ys, strict=True)]).astype(int)
    bright = band.max(axis=1) > 165
    grey = (band.max(axis=1) - band.min(axis=1)) < 0.2 * band.max(axis=1)  # lips are pinker
    return float((bright & grey).mean())


def test_closed_lips_on_an_open_smile_meet_in_lip_colour() -> None:
    """A photo laughing with its teeth showing: closed visemes show lips meeting, in the
    lips' own colour, with no seam of teeth (or a flat dark line) between them."""
    image = Image.open(DATA / "portrait_smile_teeth.jpg")
    rgb = np.asarray(image.convert("RGB"))
    base, points = frame_portrait(rgb, detect_landmarks(rgb), (512, 512))
    rig = FaceRig(base, points)
    assert rig.photo_gap > 0.04 * rig.mouth_w and rig.fills_mouth  # the photo's mouth is open
    rest = rig.render(FrameControls()).copy()
    # The measure sees the teeth where they are: along the open photo's lip line.
    assert _teeth_on_the_lip_line(rest, rig.points, rig.mouth_w) > 0.5
    c = FrameControls(close=1.0)
    closed = rig.render(c).copy()
    pts = rig.landmarks_for(c)
    assert _teeth_on_the_lip_line(closed, pts, rig.mouth_w) < 0.03
    # Lip-coloured: reddish like the photo's own lips, not a black seam.
    band = closed[int(pts[13, 1]) - 2:int(pts[14, 1]) + 3, int(pts[13, 0]) - 3:int(pts[13, 0]) + 4]
    r, g, b = band.reshape(-1, 3).mean(axis=0)
    assert r > g and r > b and band.mean() > 0.45 * rig.lip_colour.mean()
    # Rendered without the lip repaint, the warped lips leave the teeth seam behind.
    rig.fills_mouth = False
    seam = rig.render(c).copy()
    assert _teeth_on_the_lip_line(seam, pts, rig.mouth_w) > 0.03


def test_blink_closes_the_eyes(rig: FaceRig) -> None:
    p = rig.points
    open_ = rig.render(FrameControls()).copy()
    shut = rig.render(FrameControls(blink=1.0)).copy()
    for upper, lower in ((159, 145), (386, 374)):
        y0, y1 = int(p[upper, 1]), int(p[lower, 1]) + 1
        x = int(p[upper, 0])
        assert np.abs(shut[y0:y1, x - 2:x + 3].astype(int) - open_[y0:y1, x - 2:x + 3]).mean() > 10


def test_blink_schedule_is_natural() -> None:
    rng = np.random.default_rng(11)
    blinks = blink_schedule(120.0, rng)
    starts = np.array([b[0] for b in blinks])
    lengths = np.array([b[1] for b in blinks])
    gaps = np.diff(starts) - lengths[:-1]
    assert len(blinks) > 15
    assert ((lengths >= 0.1) & (lengths <= 0.3)).all()
    assert ((gaps >= 2.0) & (gaps <= 6.0)).all()
    track = idle_track(25 * 20, 25, 5, 240.0)
    assert track.blink.max() == 1.0
    # Smooth motion: no frame-to-frame jumps of more than a pixel.
    assert np.abs(np.diff(track.dx)).max() < 1.0
    assert np.abs(np.diff(track.roll)).max() < 0.5


def test_same_seed_same_frames(engine: LandmarkHead, portrait: Image.Image,
                               short_speech: Speech) -> None:
    def frames(seed: int) -> list[np.ndarray]:
        perf = engine.perform(RenderRequest(portrait, short_speech, seed=seed))
        return [f.copy() for f in perf.iter_frames()]

    a, b, c = frames(1), frames(1), frames(2)
    assert len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_mp4_matches_the_contract(engine: LandmarkHead, portrait: Image.Image,
                                  speech_ja: Speech, tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    reports = []
    engine.render(RenderRequest(portrait, speech_ja, output=out),
                  progress=lambda f, s: reports.append(f))
    info = ffprobe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert video["codec_name"] == "h264"
    assert video["pix_fmt"] == "yuv420p"
    assert (video["width"], video["height"]) == (512, 512)
    assert video["r_frame_rate"] == "25/1"
    assert audio["codec_name"] == "aac"
    assert abs(float(video["duration"]) - speech_ja.audio.duration) <= 1 / 25 + 1e-3
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart
    assert reports == sorted(reports)
    assert reports[-1] == 1.0


@pytest.mark.parametrize("size", [(720, 1280), (1280, 720)])
def test_other_sizes(engine: LandmarkHead, portrait: Image.Image, short_speech: Speech,
                     tmp_path: Path, size: tuple[int, int]) -> None:
    out = tmp_path / "s.mp4"
    engine.render(RenderRequest(portrait, short_speech, size=size, output=out))
    video = next(s for s in ffprobe(out)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == size


def test_cancel_leaves_no_file(engine: LandmarkHead, portrait: Image.Image,
                               speech_ja: Speech, tmp_path: Path) -> None:
    out = tmp_path / "c.mp4"

    def progress(fraction: float, step: str) -> None:
        if fraction > 0.3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.render(RenderRequest(portrait, speech_ja, output=out), progress=progress)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [(512, 512), (720, 1280), (1280, 720)])
def test_whole_head_in_frame_at_every_size(portrait: Image.Image, size: tuple[int, int]) -> None:
    """The crown (hair included, estimated above the forehead point) keeps its margin under
    the top edge at every size, for the photo as it is and for one cropped so that little
    room is left above the head (the frame used to slide the photo up over the crown)."""
    from models.talking_head.placement import CROWN_SHARE, HEAD_MARGIN

    rgb = np.asarray(portrait)
    points = detect_landmarks(rgb)
    length = float(np.linalg.norm(points[10] - points[152]))
    top = int(points[10, 1] - 0.55 * length)
    assert top > 0  # the photo shows the whole head
    for photo in (rgb, rgb[top:]):
        found = detect_landmarks(np.ascontiguousarray(photo))
        base, moved = frame_portrait(np.ascontiguousarray(photo), found, size)
        face = float(np.linalg.norm(moved[10] - moved[152]))
        crown = moved[10, 1] - CROWN_SHARE * face
        assert crown >= HEAD_MARGIN * size[1] - 1, (size, crown)
        assert moved[152, 1] < size[1]  # the chin too
