"""The measures of one finished message, each with its goal, from the decoded MP4 alone.

Why these: they are what a viewer notices first. A face that comes and goes, a head cut by
the frame's edge, lips that move out of step with the voice or not at all, a picture that
freezes while the voice runs on, a message too quiet, clipped, silent or with music where
none was asked for, and a picture and sound of different lengths.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quality.decode import Media, decode

# Face-mesh landmarks the measures read: forehead top, chin, inner lips (upper, lower),
# mouth corners.
FOREHEAD, CHIN, LIP_UP, LIP_LOW, CORNER_R, CORNER_L = 10, 152, 13, 14, 61, 291
KEEP = [FOREHEAD, CHIN, LIP_UP, LIP_LOW, CORNER_R, CORNER_L]
# The hair above the mesh's top point, as a share of the forehead-to-chin length (an adult's
# crown sits ~0.3 of that above the hairline); used for the informational "crown" margin.
CROWN = 0.3
MAX_LAG_FRAMES = 10
MIN_LIP_SECONDS = 2.0  # of voice, for the lip checks to be judged

GOALS: dict[str, str] = {
    "face": "face found in >= 95 % of frames",
    "head": "forehead top >= 5 % below the top edge and chin above the bottom, every frame",
    "lips": "inner-lip gap follows the voice envelope over the speech: Pearson r >= 0.3 "
            "(judged from 2 s of voice)",
    "lag": "audio/video lag by cross-correlation |lag| <= 40 ms",
    "frozen": "no 1 s of identical frames while the voice is active (pauses < 0.5 s in)",
    "loudness": "integrated loudness -16 +/- 1 LUFS",
    "peak": "true peak (4x oversampled) <= -1 dBTP",
    "voice": "voice present (>= 0.5 s active)",
    "music": "music under the lead-in when asked for (> -45 dBFS); none when not (< -60)",
    "duration": "video and audio durations within 0.1 s",
    "subtitles": "every cue inside the speech",
    "rate": "speech length in proportion to the text",
}


@dataclass(frozen=True)
class Check:
    """One measure: its value (None when it cannot be measured), whether it meets its goal."""

    name: str
    value: float | None
    ok: bool
    detail: str = ""

    @property
    def goal(self) -> str:
        return GOALS[self.name]


@dataclass
class Report:
    """All checks of one file plus the per-frame series the contact sheet draws."""

    path: str
    size: tuple[int, int]
    fps: float
    checks: dict[str, Check]
    landmarks: np.ndarray  # frames x len(KEEP) x 2 (pixels, NaN where no face)
    gap: np.ndarray  # inner-lip gap / face length per frame (NaN where no face)
    envelope: np.ndarray  # voice-band RMS per frame
    active: np.ndarray  # voice active per frame
    info: dict[str, float] = field(default_factory=dict)
    media: Media | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [n for n, c in self.checks.items() if not c.ok]

    def value(self, name: str) -> float | None:
        check = self.checks.get(name)
        return None if check is None else check.value


# ----------------------------------------------------------------------------- face

_MESH_LOCK = threading.Lock()


def face_track(frames: np.ndarray) -> np.ndarray:
    """Landmarks KEEP of the main face in each frame (video mode: tracked between frames)."""
    import mediapipe as mp

    out = np.full((len(frames), len(KEEP), 2), np.nan)
    h, w = frames.shape[1:3]
    with _MESH_LOCK, mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5) as mesh:
        for i, frame in enumerate(frames):
            result = mesh.process(np.ascontiguousarray(frame))
            if result.multi_face_landmarks:
                pts = result.multi_face_landmarks[0].landmark
                out[i] = [[pts[k].x * w, pts[k].y * h] for k in KEEP]
    return out


# ----------------------------------------------------------------------------- sound

def envelope(mono: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """Voice-band (150-4000 Hz) RMS over a one-frame window centred on each frame's time."""
    from scipy.signal import butter, sosfilt

    if mono.size == 0:
        return np.zeros(frames)
    sos = butter(4, [150, 4000], btype="bandpass", fs=rate, output="sos")
    band = sosfilt(sos, mono.astype(np.float64))
    hop = rate / fps
    out = np.zeros(frames)
    for i in range(frames):
        a = int(round((i + 0.5) * hop - hop / 2))
        seg = band[max(a, 0):max(a + int(hop), 0)]
        out[i] = math.sqrt(float(np.mean(seg * seg))) if seg.size else 0.0
    return out


def to_db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(x, 1e-7))


def voice_activity(env: np.ndarray) -> tuple[np.ndarray, float]:
    """Frames where the voice stands out of the bed (music or silence) under it.

    The bed is the quietest fifth of the frames; a voiced frame is 12 dB above it (or at
    most 25 dB under the loud frames, when the voice fills nearly the whole file and the
    quietest fifth is voice too) and above -50 dBFS. Returns the mask and the bed (dBFS).
    """
    db = to_db(env)
    if not db.size:
        return np.zeros(0, bool), -140.0
    bed = float(np.percentile(db, 20))
    loud = float(np.percentile(db, 95))
    return (db > max(min(bed + 12.0, loud - 25.0), -50.0)), bed


def speaking(active: np.ndarray, fps: float, bridge: float = 0.5) -> np.ndarray:
    """Voice activity with the pauses between words (up to ``bridge`` s) filled in."""
    out = active.copy()
    idx = np.nonzero(active)[0]
    for a, b in zip(idx, idx[1:], strict=False):
        if 1 < b - a <= bridge * fps:
            out[a:b] = True
    return out


def true_peak(audio: np.ndarray) -> float:
    """dBTP: the sample peak after 4x polyphase oversampling (ITU-R BS.1770-4 style)."""
    from scipy.signal import resample_poly

    if audio.size == 0:
        return -math.inf
    up = resample_poly(audio.astype(np.float64), 4, 1, axis=0)
    return float(20 * np.log10(max(float(np.max(np.abs(up))), 1e-9)))


def loudness(audio: np.ndarray, rate: int) -> float:
    import pyloudnorm

    if len(audio) < rate * 0.4:  # shorter than one gating block
        return -math.inf
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64)))


# ------------------------------------------------------------------------------ helpers

def _fill(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaNs (frames without a face)."""
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return x
    idx = np.arange(len(x))
    return np.interp(idx, idx[ok], x[ok])


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def lag_ms(gap: np.ndarray, env: np.ndarray, fps: float) -> float:
    """Picture delay behind the sound (ms; negative: the lips lead) at the peak of the
    cross-correlation, refined by a parabola through the peak and its neighbours."""
    a = (gap - gap.mean()) / (gap.std() + 1e-12)
    b = (env - env.mean()) / (env.std() + 1e-12)
    n = len(a)
    lags = list(range(-MAX_LAG_FRAMES, MAX_LAG_FRAMES + 1))
    corr = np.array([float(np.dot(a[max(k, 0):n + min(k, 0)], b[max(-k, 0):n - max(k, 0)]))
                     / max(n - abs(k), 1) for k in lags])
    i = int(np.argmax(corr))
    shift = float(lags[i])
    if 0 < i < len(lags) - 1:
        y0, y1, y2 = corr[i - 1], corr[i], corr[i + 1]
        den = y0 - 2 * y1 + y2
        if abs(den) > 1e-12:
            shift += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    return shift * 1000.0 / fps


def _longest(mask: np.ndarray) -> int:
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    return best


def read_cues(subtitles: str | Path | Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, end) seconds of each cue of an SRT/VTT file or its text, or pairs as given."""
    if not isinstance(subtitles, str | Path):
        return [(float(a), float(b)) for a, b in subtitles]
    text = str(subtitles)
    if "-->" not in text and Path(text).is_file():
        text = Path(text).read_text(encoding="utf-8")
    stamp = r"(?:(\d+):)?(\d+):(\d+)[,.](\d+)"
    cues = []
    for m in re.finditer(stamp + r"\s*-->\s*" + stamp, text):
        g = m.groups()

        def sec(h: str | None, mi: str, s: str, f: str) -> float:
            return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(f) / 10 ** len(f)
        cues.append((sec(*g[:4]), sec(*g[4:])))
    return cues


def _speech_rate_ok(text: str, seconds: float) -> tuple[bool, float]:
    chars = len(re.sub(r"[\s\W_]+", "", text))
    cjk = len(re.findall(r"[\u3040-\u30ff\u4e00-\u9fff]", text)) > chars / 2
    rate = chars / seconds if seconds > 0 else math.inf
    low, high = (2.5, 16.0) if cjk else (5.0, 30.0)
    return low <= rate <= high, rate


# ------------------------------------------------------------------------------ measure

def measure(path: str | Path, *, text: str | None = None, music: bool | None = None,
            subtitles: str | Path | Sequence[tuple[float, float]] | None = None,
            max_side: int = 720, keep_media: bool = True) -> Report:
    """Every check of ``path``. ``music``: True/False when music was/was not asked for
    (None: only reported). ``text`` adds the speech-rate check, ``subtitles`` (an SRT/VTT
    path or text, or (start, end) pairs) the cue check."""
    media = decode(path, max_side=max_side)
    n, (h, w) = len(media.frames), media.frames.shape[1:3]
    fps = media.fps
    checks: dict[str, Check] = {}
    lm = face_track(media.frames) if n else np.zeros((0, len(KEEP), 2))
    found = np.isfinite(lm[:, 0, 0])
    face_pct = 100.0 * float(found.mean()) if n else 0.0
    checks["face"] = Check("face", face_pct, face_pct >= 95.0, f"{int(found.sum())}/{n}")

    info: dict[str, float] = {}
    length = np.linalg.norm(lm[:, 0] - lm[:, 1], axis=1)  # forehead to chin
    if found.any():
        top = float(np.nanmin(lm[:, 0, 1])) / h
        bottom = 1.0 - float(np.nanmax(lm[:, 1, 1])) / h
        crown = float(np.nanmin(lm[:, 0, 1] - CROWN * length)) / h
        info.update(forehead=100 * top, chin=100 * bottom, crown=100 * crown,
                    face_height=100 * float(np.nanmedian(length)) / h)
        checks["head"] = Check("head", 100 * min(top - 0.05, bottom), top >= 0.05 and bottom > 0,
                               f"forehead {100 * top:.1f} %, chin {100 * bottom:.1f} % from edge")
    else:
        checks["head"] = Check("head", None, False, "no face")

    mono = media.mono
    env = envelope(mono, media.rate, fps, n)
    active, bed = voice_activity(env)
    gap = np.linalg.norm(lm[:, 2] - lm[:, 3], axis=1) / np.where(found, length, np.nan)
    filled = _fill(gap)
    # Lips are compared with the sound over the speech (pauses in, 0.4 s either side): the
    # music of the lead-in and tail is sound the lips must not follow.
    span = np.zeros(n, bool)
    if active.any():
        idx = np.nonzero(active)[0]
        pad = int(round(0.4 * fps))
        span[max(idx[0] - pad, 0):idx[-1] + pad + 1] = True
    if found[span].sum() >= 3 and active.any():
        r = _pearson(filled[span], env[span])
        lag = lag_ms(filled[span], env[span], fps)
    else:
        r, lag = math.nan, math.nan
    voice_s = float(active.sum()) / fps
    if voice_s < MIN_LIP_SECONDS and active.any():
        # A phrase of a second or so is one breath of near-constant voicing: its envelope
        # has too little shape for a correlation to mean anything either way.
        note = f"only {voice_s:.1f} s of voice: not judged"
        checks["lips"] = Check("lips", None if math.isnan(r) else r, True, note)
        checks["lag"] = Check("lag", None if math.isnan(lag) else lag, True, note)
    else:
        checks["lips"] = Check("lips", None if math.isnan(r) else r,
                               not math.isnan(r) and r >= 0.3)
        checks["lag"] = Check("lag", None if math.isnan(lag) else lag,
                              not math.isnan(lag) and abs(lag) <= 40.0)

    small = media.frames[:, ::4, ::4].astype(np.int16) if n else media.frames
    diffs = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2, 3)) if n > 1 else np.zeros(0)
    still = np.r_[False, diffs < 0.25]
    frozen = _longest(still & speaking(active, fps)) / fps if n else 0.0
    checks["frozen"] = Check("frozen", frozen, frozen < 1.0, "seconds of identical frames")

    audio = media.audio
    lufs = loudness(audio, media.rate) if audio.size else -math.inf
    peak = true_peak(audio)
    checks["loudness"] = Check("loudness", lufs if math.isfinite(lufs) else None,
                               math.isfinite(lufs) and abs(lufs + 16.0) <= 1.0)
    checks["peak"] = Check("peak", peak if math.isfinite(peak) else None,
                           math.isfinite(peak) and peak <= -1.0)
    checks["voice"] = Check("voice", voice_s, voice_s >= 0.5)

    first = int(np.argmax(active)) if active.any() else n
    lead = to_db(env[:first]) if first >= int(0.3 * fps) else np.zeros(0)
    lead_db = float(np.median(lead)) if lead.size else -140.0
    info.update(bed=bed, lead_in=first / fps, lead_db=lead_db)
    if music is None:
        checks["music"] = Check("music", bed, True, "not asked")
    elif music:
        checks["music"] = Check("music", lead_db, lead.size > 0 and lead_db > -45.0,
                                f"lead-in {first / fps:.2f} s at {lead_db:.0f} dBFS")
    else:
        # What is heard away from the voice (0.2 s clear of it); none of that: no music.
        clear = ~np.convolve(speaking(active, fps).astype(float), np.ones(2 * int(0.2 * fps) + 1),
                             "same").astype(bool)
        rest = float(np.median(to_db(env[clear]))) if clear.sum() >= 3 else -140.0
        checks["music"] = Check("music", rest, rest < -60.0,
                                f"{clear.sum() / fps:.2f} s away from the voice at {rest:.0f} dBFS")

    diff = abs(media.video_seconds - media.audio_seconds)
    checks["duration"] = Check("duration", diff, diff <= 0.1,
                               f"video {media.video_seconds:.2f} s, audio "
                               f"{media.audio_seconds:.2f} s")
    if active.any():
        start, end = first / fps, (n - int(np.argmax(active[::-1]))) / fps
    else:
        start = end = 0.0
    info.update(speech_start=start, speech_end=end)
    if subtitles is not None:
        cues = read_cues(subtitles)
        outside = [c for c in cues if c[0] < start - 0.3 or c[1] > end + 0.5 or c[1] <= c[0]]
        checks["subtitles"] = Check("subtitles", float(len(outside)),
                                    bool(cues) and not outside,
                                    f"{len(cues)} cues, speech {start:.2f}-{end:.2f} s")
    if text is not None:
        ok, rate = _speech_rate_ok(text, end - start)
        checks["rate"] = Check("rate", rate, ok and end > start, "characters per second")
    return Report(str(path), (w, h), fps, checks, lm, gap, env, active, info,
                  media if keep_media else None)


# -------------------------------------------------------------------------------- table

COLUMNS = [("face %", "face", "{:.0f}"), ("fore %", "forehead", "{:.1f}"),
           ("crown %", "crown", "{:.1f}"), ("chin %", "chin", "{:.1f}"),
           ("lip r", "lips", "{:.2f}"), ("lag ms", "lag", "{:+.0f}"),
           ("frozen s", "frozen", "{:.2f}"), ("LUFS", "loudness", "{:.1f}"),
           ("dBTP", "peak", "{:.1f}"), ("voice s", "voice", "{:.1f}"),
           ("music dB", "music", "{:.0f}"), ("dur diff", "duration", "{:.3f}")]


def table(reports: Iterable[Report], names: Sequence[str] | None = None) -> str:
    """A plain-text table, one row per report, failed checks named in the last column."""
    reports = list(reports)
    names = list(names) if names is not None else [Path(r.path).name for r in reports]
    header = ["file", *(c[0] for c in COLUMNS), "failed"]
    rows = []
    for name, rep in zip(names, reports, strict=True):
        row = [name]
        for _, key, fmt in COLUMNS:
            value = rep.info.get(key) if key in rep.info else rep.value(key)
            row.append("-" if value is None or not math.isfinite(value) else fmt.format(value))
        row.append(",".join(rep.failed) or "ok")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(x).rjust(wd) if i else str(x).ljust(wd)
                       for i, (x, wd) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
