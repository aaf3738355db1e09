"""Media values in and out: the one place where uploaded audio and images are decoded,
validated and encoded. Every route and tab goes through here, so every limit holds
everywhere.

Audio decodes through libsndfile (wav, flac, ogg/vorbis/opus, mp3) and falls back to the
ffmpeg binary that imageio-ffmpeg ships (m4a, webm, aac) — no ffprobe needed. Images decode
through Pillow with EXIF orientation applied and ICC profiles converted to sRGB.
"""

from __future__ import annotations

import io
import struct
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from models.base import Audio, Timing
from models.errors import InvalidInput, PayloadTooLarge

# ------------------------------------------------------------------------------ limits


@dataclass(frozen=True)
class MediaLimits:
    """Every media limit in one table (README lists them)."""

    audio_max_bytes: int = 50 * 1024 * 1024
    audio_max_seconds: float = 300.0
    audio_min_rate: int = 4000
    audio_max_rate: int = 384_000
    image_max_bytes: int = 10 * 1024 * 1024
    image_max_pixels: int = 50_000_000
    text_max_chars: int = 1000
    bgm_max_bytes: int = 10 * 1024 * 1024


LIMITS = MediaLimits()
AUDIO_EXTENSIONS = ("wav", "mp3", "flac", "ogg", "opus", "m4a", "aac", "webm")
IMAGE_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
STUDIO_RATE = 24000


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped by imageio-ffmpeg (GPL build with x264, aac, mp3, opus)."""
    import imageio_ffmpeg

    exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    return exe


# ------------------------------------------------------------------------------- audio


def _audio_error(area: str, reason: str, message: str, message_ja: str,
                 filename: str | None, **details: object) -> InvalidInput:
    return InvalidInput(
        f"{filename + ': ' if filename else ''}{message}",
        code=f"{area}_AUDIO_INVALID",
        message_ja=f"{filename + ': ' if filename else ''}{message_ja}",
        details={"reason": reason, "filename": filename, **details},
    )


def _wav_claims_more_than_it_has(data: bytes) -> bool:
    """A RIFF/WAVE whose data chunk says it is longer than the bytes that follow."""
    return _wav_size_problem(data) == "truncated"


def _wav_size_problem(data: bytes) -> str | None:
    """``truncated`` when a RIFF/WAVE's data chunk claims more bytes than the file holds (or
    there is no data chunk); ``size_mismatch`` when it claims far fewer and what follows is
    not a chain of chunks (a header that lies the other way); None when sizes add up."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk_id == b"data":
            if size == 0xFFFFFFFF:  # streamed WAV: size unknown, reads to the end
                return None
            if pos + 8 + size > len(data):
                return "truncated"
            rest = pos + 8 + size + (size & 1)
            while rest + 8 <= len(data):  # trailing chunks (LIST, id3) are fine
                tail_id = data[rest:rest + 4]
                tail_size = struct.unpack("<I", data[rest + 4:rest + 8])[0]
                if not all(32 <= c < 127 for c in tail_id) or rest + 8 + tail_size > len(data):
                    break
                rest += 8 + tail_size + (tail_size & 1)
            return "size_mismatch" if len(data) - rest > 16 else None
        pos += 8 + size + (size & 1)
    return "truncated"  # no data chunk at all


MAX_SANE_PEAK = 64.0  # float samples beyond +36 dBFS are garbage, not loud audio


def _declared_seconds(data: bytes, limits: MediaLimits) -> float | None:
    """The duration a file declares (libsndfile header), before decoding it all; None when
    unknown or when the rate itself is out of range (that error is reported later)."""
    import soundfile as sf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    if not limits.audio_min_rate <= info.samplerate <= limits.audio_max_rate or info.frames <= 0:
        return None
    return float(info.frames) / float(info.samplerate)


def _decode_with_soundfile(data: bytes) -> tuple[np.ndarray, int] | None:
    import soundfile as sf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    return samples, int(rate)


def _decode_with_ffmpeg(data: bytes, max_seconds: float) -> tuple[np.ndarray, int] | None:
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", "pipe:0", "-t",
           f"{max_seconds + 1:.0f}", "-vn", "-ac", "1", "-ar", str(STUDIO_RATE),
           "-f", "f32le", "pipe:1"]
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or not proc.stdout:
        return None
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    return samples[:, None], STUDIO_RATE


def decode_audio(
    data: bytes, *, area: str = "VALIDATION", filename: str | None = None,
    limits: MediaLimits = LIMITS, target_rate: int | None = STUDIO_RATE,
) -> Audio:
    """Bytes of any supported format -> mono float32 :class:`Audio` (resampled to 24 kHz
    unless ``target_rate`` is None). Bad input raises ``{area}_AUDIO_INVALID`` with a
    ``reason`` (empty, unreadable, truncated, size_mismatch, nan, out_of_range,
    sample_rate) or
    ``{area}_AUDIO_TOO_LARGE`` / ``{area}_AUDIO_TOO_LONG``."""
    if not data:
        raise _audio_error(area, "empty", "The audio file is empty.",
                           "音声ファイルが空です。", filename)
    if len(data) > limits.audio_max_bytes:
        raise PayloadTooLarge(
            f"The audio file is {len(data) / 1e6:.1f} MB; the limit is "
            f"{limits.audio_max_bytes / 1e6:.0f} MB.", code=f"{area}_AUDIO_TOO_LARGE",
            message_ja=f"音声ファイルが大きすぎます（上限 {limits.audio_max_bytes / 1e6:.0f} MB）。",
            details={"filename": filename, "max_bytes": limits.audio_max_bytes})
    problem = _wav_size_problem(data)
    if problem == "truncated":
        raise _audio_error(area, "truncated", "The WAV file is truncated or its header "
                           "claims more data than the file holds.",
                           "WAV ファイルが途中で切れているか、ヘッダーが実際より長いサイズを示しています。",
                           filename)
    if problem == "size_mismatch":
        raise _audio_error(area, "size_mismatch", "The WAV header's data size does not match "
                           "the file (it claims less audio than the file holds).",
                           "WAV ヘッダーのデータサイズがファイルの実際の内容と一致しません。",
                           filename)
    declared = _declared_seconds(data, limits)
    if declared is not None and declared > limits.audio_max_seconds + 1:
        raise PayloadTooLarge(
            f"The audio is {declared:.0f} s long; the limit is {limits.audio_max_seconds:.0f} s.",
            code=f"{area}_AUDIO_TOO_LONG",
            message_ja=f"音声が長すぎます（上限 {limits.audio_max_seconds:.0f} 秒）。",
            details={"filename": filename, "duration": declared,
                     "max_seconds": limits.audio_max_seconds})
    decoded = _decode_with_soundfile(data) or _decode_with_ffmpeg(data, limits.audio_max_seconds)
    if decoded is None:
        raise _audio_error(area, "unreadable", "The file is not audio in a supported format "
                           f"({', '.join(AUDIO_EXTENSIONS)}).",
                           "対応形式の音声として読めません。", filename)
    samples, rate = decoded
    if not limits.audio_min_rate <= rate <= limits.audio_max_rate:
        raise _audio_error(area, "sample_rate", f"Unsupported sample rate {rate} Hz.",
                           f"対応していないサンプリングレート {rate} Hz です。", filename, rate=rate)
    if samples.size == 0:
        raise _audio_error(area, "empty", "The audio holds no samples.",
                           "音声にサンプルがありません。", filename)
    if not np.isfinite(samples).all():
        raise _audio_error(area, "nan", "The audio contains NaN or infinite samples.",
                           "音声に NaN または無限大の値が含まれています。", filename)
    if float(np.abs(samples).max()) > MAX_SANE_PEAK:
        raise _audio_error(area, "out_of_range", "The audio's sample values are far outside "
                           "the valid range (a corrupt float file).",
                           "音声のサンプル値が有効範囲を大きく超えています（壊れたファイル）。",
                           filename)
    duration = samples.shape[0] / rate
    if duration > limits.audio_max_seconds:
        raise PayloadTooLarge(
            f"The audio is {duration:.0f} s long; the limit is {limits.audio_max_seconds:.0f} s.",
            code=f"{area}_AUDIO_TOO_LONG",
            message_ja=f"音声が長すぎます（上限 {limits.audio_max_seconds:.0f} 秒）。",
            details={"filename": filename, "duration": duration,
                     "max_seconds": limits.audio_max_seconds})
    mono = samples.mean(axis=1).astype(np.float32)
    np.clip(mono, -1.0, 1.0, out=mono)
    audio = Audio(mono, rate)
    if target_rate and rate != target_rate:
        audio = resample(audio, target_rate)
    return audio


def resample(audio: Audio, rate: int) -> Audio:
    if audio.sample_rate == rate:
        return audio
    import soxr

    return Audio(soxr.resample(audio.samples, audio.sample_rate, rate).astype(np.float32), rate)


def encode_wav(audio: Audio) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def encode_audio(audio: Audio, fmt: str = "wav", bitrate: str = "192k") -> bytes:
    """``wav`` (PCM16), ``mp3`` or ``m4a`` (AAC) bytes; mp3/m4a through the ffmpeg binary."""
    if fmt == "wav":
        return encode_wav(audio)
    codec = {"mp3": ["-c:a", "libmp3lame", "-f", "mp3"],
             "m4a": ["-c:a", "aac", "-movflags", "+faststart", "-f", "ipod"]}.get(fmt)
    if codec is None:
        raise InvalidInput(f"Unsupported audio output format {fmt!r}.",
                           code="VALIDATION_ERROR", details={"allowed": ["wav", "mp3", "m4a"]})
    pcm = np.clip(audio.samples, -1.0, 1.0).astype("<f4").tobytes()
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "f32le", "-ar",
           str(audio.sample_rate), "-ac", "1", "-i", "pipe:0", "-b:a", bitrate, *codec, "pipe:1"]
    if fmt == "m4a":  # the mp4 muxer needs a seekable output
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "a.m4a"
            subprocess.run([*cmd[:-1], str(out)], input=pcm, capture_output=True, check=True,
                           timeout=300)
            return out.read_bytes()
    proc = subprocess.run(cmd, input=pcm, capture_output=True, check=True, timeout=300)
    encoded: bytes = proc.stdout
    return encoded


# ------------------------------------------------------------------------------ images


def _image_error(reason: str, message: str, message_ja: str, code: str = "IMAGE_INVALID",
                 **details: object) -> InvalidInput:
    return InvalidInput(message, code=code, message_ja=message_ja,
                        details={"reason": reason, **details})


def decode_image(data: bytes, *, limits: MediaLimits = LIMITS,
                 filename: str | None = None) -> Image.Image:
    """Bytes -> an upright sRGB PIL image (RGB, or RGBA when it has transparency)."""
    if not data:
        raise _image_error("empty", "The image file is empty.", "画像ファイルが空です。",
                           code="IMAGE_EMPTY", filename=filename)
    if len(data) > limits.image_max_bytes:
        raise PayloadTooLarge(
            f"The image is {len(data) / 1e6:.1f} MB; the limit is "
            f"{limits.image_max_bytes / 1e6:.0f} MB.", code="IMAGE_TOO_LARGE",
            message_ja=f"画像が大きすぎます（上限 {limits.image_max_bytes / 1e6:.0f} MB）。",
            details={"max_bytes": limits.image_max_bytes, "filename": filename})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            fmt = probe.format
            width, height = probe.size
    except (UnidentifiedImageError, Image.DecompressionBombWarning,
            Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, Image.DecompressionBombWarning | Image.DecompressionBombError):
            raise _image_error("too_many_pixels", "The image has too many pixels.",
                               "画像の画素数が多すぎます。", code="IMAGE_TOO_MANY_PIXELS") from None
        raise _image_error("unreadable", "The file is not a JPEG, PNG or WebP image.",
                           "JPEG・PNG・WebP 画像として読めません。", code="IMAGE_INVALID_FORMAT",
                           filename=filename) from None
    if fmt not in IMAGE_FORMATS:
        raise _image_error("format", f"Unsupported image format {fmt}; use JPEG, PNG or WebP.",
                           f"{fmt} 形式には対応していません。JPEG・PNG・WebP を使ってください。",
                           code="IMAGE_INVALID_FORMAT", format=fmt)
    if width * height > limits.image_max_pixels:
        raise _image_error(
            "too_many_pixels",
            f"The image is {width}x{height} ({width * height / 1e6:.0f} MP); the limit is "
            f"{limits.image_max_pixels / 1e6:.0f} MP.",
            f"画像の画素数が多すぎます（上限 {limits.image_max_pixels / 1e6:.0f} MP）。",
            code="IMAGE_TOO_MANY_PIXELS", width=width, height=height)
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except (OSError, SyntaxError, ValueError):
        raise _image_error("truncated", "The image file is truncated or corrupt.",
                           "画像ファイルが壊れているか途中で切れています。", code="IMAGE_CORRUPT",
                           filename=filename) from None
    return to_srgb(ImageOps.exif_transpose(opened))


def to_srgb(image: Image.Image) -> Image.Image:
    """Convert through the embedded ICC profile (if any) to sRGB; keep alpha if present."""
    icc = image.info.get("icc_profile")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    target_mode = "RGBA" if has_alpha else "RGB"
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            base = image.convert("RGBA" if has_alpha else "RGB")
            converted = ImageCms.profileToProfile(base, src, dst, outputMode=base.mode)
            if converted is not None:
                converted.info.pop("icc_profile", None)
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return image.convert(target_mode)


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def encode_image(image: Image.Image, fmt: str = "png", quality: int = 92) -> bytes:
    fmt = fmt.lower()
    if fmt == "png":
        return encode_png(image)
    buffer = io.BytesIO()
    if fmt in ("jpg", "jpeg"):
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    elif fmt == "webp":
        image.save(buffer, format="WEBP", quality=quality)
    else:
        raise InvalidInput(f"Unsupported image output format {fmt!r}.",
                           code="VALIDATION_ERROR", details={"allowed": ["png", "jpg", "webp"]})
    return buffer.getvalue()


def validate_text(text: str | None, *, area: str = "VOICE",
                  limits: MediaLimits = LIMITS) -> str:
    """Trimmed message text, or ``{area}_TEXT_EMPTY`` / ``{area}_TEXT_TOO_LONG``."""
    cleaned = (text or "").replace("\x00", "").strip()
    if not cleaned:
        raise InvalidInput("The text is empty.", code=f"{area}_TEXT_EMPTY",
                           message_ja="テキストが空です。")
    if len(cleaned) > limits.text_max_chars:
        raise InvalidInput(
            f"The text is {len(cleaned)} characters; the limit is {limits.text_max_chars}.",
            code=f"{area}_TEXT_TOO_LONG",
            message_ja=f"テキストが長すぎます（{len(cleaned)} 文字、上限 {limits.text_max_chars} 文字）。",
            details={"length": len(cleaned), "max_chars": limits.text_max_chars})
    return cleaned


def stretched(items: Sequence[Timing], scale: float = 1.0, shift: float = 0.0
              ) -> tuple[Timing, ...]:
    """``items`` (sentence or phoneme timings) stretched by ``scale`` then moved by
    ``shift`` seconds: a voice whose audio was reshaped keeps its timeline."""
    return tuple(Timing(t.start * scale + shift, t.end * scale + shift, t.text) for t in items)
