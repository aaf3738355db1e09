"""The renderer's shortcuts give the same pictures as the plain computation they replace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.base import Audio
from models.errors import BackendFailed
from models.talking_head.face_mesh import LOWER_INNER, SHAPES, UPPER_INNER, detect_landmarks
from models.talking_head.face_rig import FaceRig
from models.talking_head.mp4 import Mp4Writer
from models.talking_head.placement import frame_portrait
from models.talking_head.warp import FrameControls
from tests.fixtures.video import DATA, ffprobe


@pytest.fixture(scope="module")
def rig(portrait: Image.Image) -> FaceRig:
    rgb = np.asarray(portrait)
    base, points = frame_portrait(rgb, detect_landmarks(rgb), (512, 512))
    return FaceRig(base, points)


def plain_mouth_field(rig: FaceRig, c: FrameControls, pts: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The mouth field computed over the whole mouth ROI, shape by shape (the old way)."""
    up = sum(getattr(c, s) * rig.fields_up[s] for s in SHAPES if getattr(c, s))
    low = sum(getattr(c, s) * rig.fields_low[s] for s in SHAPES if getattr(c, s))
    roi = rig.mouth_roi
    up_in, low_in = pts[UPPER_INNER], pts[LOWER_INNER]
    mid = (up_in + low_in) / 2
    order = np.argsort(mid[:, 0])
    xs = np.arange(roi.x0, roi.x1, dtype=np.float64)
    mid_y = np.interp(xs, mid[order, 0], mid[order, 1])
    outside = np.maximum(mid[order[0], 0] - xs, xs - mid[order[-1], 0])
    softness = 0.6 + np.clip(outside, 0, None) * 1.2
    lower = 1.0 / (1.0 + np.exp(-np.clip((rig.mouth_grid_y - mid_y[None, :]) / softness[None, :],
                                         -30, 30)))
    field = up * (1 - lower[..., None]) + low * lower[..., None]
    sx = rig.mouth_grid_x + field[..., 0]
    sy = rig.mouth_grid_y + field[..., 1]
    src_mid = np.interp(sx, rig.src_mid_x, rig.src_mid_y)
    inside = (sx > rig.src_mid_x[0]) & (sx < rig.src_mid_x[-1])
    wrong = np.where(lower > 0.5, sy < src_mid - 0.5, sy > src_mid + 0.5) & inside
    ou, ol = np.argsort(up_in[:, 0]), np.argsort(low_in[:, 0])
    y_up = np.interp(xs, up_in[ou, 0], up_in[ou, 1])
    y_low = np.interp(xs, low_in[ol, 0], low_in[ol, 1])
    between = ((rig.mouth_grid_y >= y_up[None, :] - 1.0) & (rig.mouth_grid_y <= y_low[None, :] + 1.0)
               & ((y_low - y_up) > 0.3)[None, :])
    return field, (wrong & between).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("controls", [
    FrameControls(open=1.0), FrameControls(open=0.4, spread=0.7),
    FrameControls(round=0.9, open=0.3), FrameControls(close=1.0),
    FrameControls(open=0.6, spread=0.2, round=0.3, close=0.1),
])
def test_banded_mouth_field_equals_the_plain_one(rig: FaceRig, controls: FrameControls) -> None:
    pts = rig.landmarks_for(controls)
    field, wrong = rig._mouth_field(controls, pts)
    ref_field, ref_wrong = plain_mouth_field(rig, controls, pts)
    np.testing.assert_allclose(field, ref_field, atol=1e-3)
    # the cavity mask may differ only on pixels that sit exactly on the lip line
    assert np.mean(wrong != ref_wrong) < 1e-3
    assert (wrong.sum() > 0) == (controls.open > 0.2)


@pytest.mark.slow
def test_background_fill_is_a_soft_blur(portrait: Image.Image) -> None:
    rgb = np.asarray(portrait)
    base, _ = frame_portrait(rgb, detect_landmarks(rgb), (720, 1280))  # 9:16: filled above/below
    top = base[:40].astype(np.float32)
    assert np.abs(np.diff(top, axis=1)).mean() < 2.0  # smooth (blurred), not photo detail
    assert top.mean() > 10  # filled, not black


def test_writer_thread_writes_every_frame_in_order(tmp_path: Path) -> None:
    import subprocess

    from models.talking_head.mp4 import ffmpeg_binary

    out = tmp_path / "ramp.mp4"
    frame = np.zeros((64, 64, 3), np.uint8)
    with Mp4Writer(out, (64, 64), 25, Audio(np.zeros(16000, np.float32), 16000),
                   crf=10, preset="ultrafast") as writer:
        for i in range(30):
            frame[:] = i * 8  # one buffer reused, as the renderer does
            writer.write(frame)
    assert ffprobe(out)["streams"][0]["nb_frames"] == "30"
    raw = subprocess.run([ffmpeg_binary(), "-v", "error", "-i", str(out), "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    levels = np.frombuffer(raw, np.uint8).reshape(30, -1).mean(axis=1)
    assert np.all(np.diff(levels) > 4)  # each frame as it was when written


def test_writer_keeps_the_colours(tmp_path: Path, portrait: Image.Image) -> None:
    """Frames go to ffmpeg as I420 made here; decoded back they match the RGB that was
    written (a photo and flat patches of saturated colour: same matrix and range as
    ffmpeg's own rgb24 conversion, BT.601 limited)."""
    import subprocess

    from models.talking_head.mp4 import ffmpeg_binary

    frame = np.asarray(portrait.convert("RGB").resize((128, 128)), np.uint8).copy()
    frame[:32, :32] = (220, 30, 40)
    frame[:32, 32:64] = (30, 200, 60)
    frame[:32, 64:96] = (250, 250, 250)
    out = tmp_path / "colours.mp4"
    with Mp4Writer(out, (128, 128), 25, None, crf=4, preset="ultrafast") as writer:
        for _ in range(3):
            writer.write(frame)
    raw = subprocess.run([ffmpeg_binary(), "-v", "error", "-i", str(out), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True,
                         check=True).stdout
    back = np.frombuffer(raw, np.uint8).reshape(128, 128, 3).astype(int)
    for x0 in (0, 32, 64):  # patch centres (away from chroma edges)
        assert np.abs(back[8:24, x0 + 8:x0 + 24] - frame[8:24, x0 + 8:x0 + 24]).max() <= 4
    assert np.abs(back[40:] - frame[40:].astype(int)).mean() < 3


def test_ffmpeg_dying_mid_render_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "dead.mp4"
    frame = np.zeros((64, 64, 3), np.uint8)

    def render_into_dead_ffmpeg() -> None:
        with Mp4Writer(out, (64, 64), 25, None) as writer:
            writer.write(frame)
            writer._proc.kill()
            writer._proc.wait()
            for _ in range(200):
                writer.write(frame)

    with pytest.raises(BackendFailed) as info:
        render_into_dead_ffmpeg()
    assert info.value.code == "VIDEO_ENCODE_FAILED"
    assert not out.exists()
    assert not list(tmp_path.glob("*.mp4"))


def test_rounded_lips_purse_instead_of_gaping(rig: FaceRig) -> None:
    """/o/ and /u/ narrow the opening both ways: the same jaw drop with rounded lips leaves
    a smaller inner-lip gap than without (the corners only moved in, so the hole stood as
    tall as for /a/ on a narrower mouth and read as the widest opening of all)."""
    def gap(c: FrameControls) -> float:
        pts = rig.landmarks_for(c)
        return float(pts[LOWER_INNER][:, 1].mean() - pts[UPPER_INNER][:, 1].mean())

    assert gap(FrameControls(open=0.6, round=1.0)) < 0.85 * gap(FrameControls(open=0.6))
    assert gap(FrameControls(open=0.3, round=1.0)) > 0  # pursed, never crossed


def test_closing_an_open_smile_raises_the_jaw() -> None:
    """Lips apart in the photo (a smile with teeth) are closed by the jaw coming up, as a
    mouth closes: the chin rises most of the photo's lip gap and the lower lip keeps its
    thickness. Before, only the inner lips were stretched together, into one tall band of
    lip that read as a moustache and that the face mesh still read as half open. A
    closed-mouth photo's jaw stays where it is."""
    from models.talking_head.face_mesh import CHIN, LOWER_OUTER

    def lip_rig(name: str) -> FaceRig:
        rgb = np.asarray(Image.open(DATA / name).convert("RGB"))
        return FaceRig(*frame_portrait(rgb, detect_landmarks(rgb), (512, 512)))

    def lower_lip(pts: np.ndarray) -> float:
        return float(pts[LOWER_OUTER[3:8]][:, 1].mean() - pts[LOWER_INNER[3:8]][:, 1].mean())

    smile = lip_rig("portrait_smile_teeth.jpg")
    closed = smile.landmarks_for(FrameControls(close=1.0))
    assert smile.photo_gap > 0.1 * smile.mouth_w
    assert closed[CHIN[0], 1] < smile.points[CHIN[0], 1] - 0.5 * smile.photo_gap
    assert abs(lower_lip(closed) - lower_lip(smile.points)) < 0.3 * lower_lip(smile.points)
    plain = lip_rig("grace_hopper.jpg")
    moved = plain.landmarks_for(FrameControls(close=1.0))
    assert moved[CHIN[0], 1] == pytest.approx(plain.points[CHIN[0], 1])
