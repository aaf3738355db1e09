"""Decoding, validation and encoding of uploaded media: every limit and hostile case."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from models.base import Audio
from models.errors import InvalidInput, PayloadTooLarge
from pipelines.media import (
    MediaLimits,
    decode_audio,
    decode_image,
    encode_audio,
    encode_image,
    encode_wav,
    validate_text,
)


def tone(seconds: float = 1.0, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "m4a"])
def test_audio_roundtrip_to_24k_mono(fmt: str) -> None:
    data = encode_audio(tone(1.0), fmt)
    audio = decode_audio(data)
    assert audio.sample_rate == 24000
    # mp3 frames pad the end (up to ~1 frame + encoder delay); wav/m4a are exact
    assert audio.duration == pytest.approx(1.0, abs=0.1 if fmt == "mp3" else 0.03)
    assert 0.15 < float(np.abs(audio.samples).max()) < 0.4


def test_stereo_is_mixed_to_mono() -> None:
    import soundfile as sf

    buffer = io.BytesIO()
    left = tone(0.5, 24000).samples
    sf.write(buffer, np.stack([left, -left * 0], axis=1), 24000, format="WAV")
    audio = decode_audio(buffer.getvalue())
    assert audio.samples.ndim == 1
    assert np.abs(audio.samples).max() == pytest.approx(0.15, abs=0.01)


def _wav_header_only(declared: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + declared) + b"WAVE" + b"fmt " +
            struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", declared))


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("empty", b"", "empty"),
    ("zip", b"PK\x03\x04" + b"\x00" * 100, "unreadable"),
    ("text", b"hello, I am not audio" * 10, "unreadable"),
    ("lying-header", _wav_header_only(1_000_000) + b"\x00" * 100, "truncated"),
    ("no-samples", _wav_header_only(0), "empty"),
])
def test_hostile_audio_is_a_clear_error(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_audio(data, area="PROSODY", filename=f"{name}.wav")
    assert info.value.code == "PROSODY_AUDIO_INVALID"
    assert info.value.details["reason"] == reason
    assert f"{name}.wav" in info.value.message


def test_nan_samples_refused() -> None:
    import soundfile as sf

    buffer = io.BytesIO()
    samples = tone(0.5).samples.copy()
    samples[100] = np.nan
    sf.write(buffer, samples, 16000, format="WAV", subtype="FLOAT")
    with pytest.raises(InvalidInput) as info:
        decode_audio(buffer.getvalue())
    assert info.value.details["reason"] == "nan"


def test_absurd_sample_rate_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        decode_audio(encode_wav(Audio(np.zeros(100, np.float32), 1000)))
    assert info.value.details["reason"] == "sample_rate"


def test_audio_size_and_duration_limits() -> None:
    small = MediaLimits(audio_max_bytes=1000, audio_max_seconds=0.5)
    with pytest.raises(PayloadTooLarge) as too_big:
        decode_audio(encode_wav(tone(1.0)), area="BGM", limits=small)
    assert too_big.value.code == "BGM_AUDIO_TOO_LARGE"
    with pytest.raises(PayloadTooLarge) as too_long:
        decode_audio(encode_wav(tone(1.0)), limits=MediaLimits(audio_max_seconds=0.5))
    assert too_long.value.code == "VALIDATION_AUDIO_TOO_LONG"


def _jpeg(size=(64, 48), exif_orientation: int | None = None, noise: bool = False) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    if noise:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    image.paste((30, 200, 30), (0, 0, size[0] // 2, size[1] // 2))
    buffer = io.BytesIO()
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buffer, format="JPEG", exif=exif)
    else:
        image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_image_exif_orientation_is_applied() -> None:
    upright = decode_image(_jpeg((64, 48)))
    rotated = decode_image(_jpeg((64, 48), exif_orientation=6))  # rotate 90 CW on display
    assert upright.size == (64, 48)
    assert rotated.size == (48, 64)


def test_image_with_alpha_keeps_it() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert decode_image(encode_image(image, "png")).mode == "RGBA"


def test_icc_profile_converted_to_srgb() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    image = Image.new("RGB", (8, 8), (10, 200, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", icc_profile=rgb_profile.tobytes())
    decoded = decode_image(buffer.getvalue())
    assert decoded.mode == "RGB"
    assert "icc_profile" not in decoded.info
    assert abs(decoded.getpixel((0, 0))[1] - 200) <= 3
    assert profile  # LAB profile creation works: ImageCms is available


def _zip_named_png() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "not an image")
    return buffer.getvalue()


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (4, 4)).save(buffer, format="GIF")
    return buffer.getvalue()


def _bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "code"), [
    (b"", "IMAGE_EMPTY"),
    (_zip_named_png(), "IMAGE_INVALID_FORMAT"),
    (_gif(), "IMAGE_INVALID_FORMAT"),
    (_jpeg((256, 256), noise=True)[:20000], "IMAGE_CORRUPT"),
    (_bomb_png(), "IMAGE_TOO_MANY_PIXELS"),
])
def test_hostile_images_are_clear_errors(data: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_image(data, limits=MediaLimits(image_max_pixels=50_000_000))
    assert info.value.code == code
    assert info.value.message_ja


def test_image_byte_limit() -> None:
    with pytest.raises(PayloadTooLarge) as info:
        decode_image(_jpeg(), limits=MediaLimits(image_max_bytes=100))
    assert info.value.code == "IMAGE_TOO_LARGE"


@pytest.mark.parametrize(("text", "code"), [("", "VOICE_TEXT_EMPTY"), ("   \n", "VOICE_TEXT_EMPTY"),
                                            ("あ" * 1001, "VOICE_TEXT_TOO_LONG")])
def test_text_limits(text: str, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_text(text)
    assert info.value.code == code


def test_text_at_limit_is_accepted() -> None:
    assert validate_text(" " + "あ" * 1000 + " ") == "あ" * 1000
