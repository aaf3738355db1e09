"""The measures of one finished message, each with its goal, from the decoded MP4 alone.

Why these: they are what a viewer notices first. A face that comes and goes, a head cut by
the frame's edge, lips that move out of step with the voice or not at all, a picture that
freezes while the voice runs on, a message too quiet, clipped, silent or with music where
none was asked for, and a picture and sound of different lengths.

The lips are judged over the *speech frames only*, found by a voice-activity detector
(Silero VAD, its weights inside the ``silero-vad`` wheel, as the THEval benchmark finds
them): the still face of the lead-in, the tail and long pauses said nothing about the
articulation, yet a correlation over them rewarded any mouth that was closed in silence and
open in speech. Three lip measures, all over those frames:

- THEval's lip-sync measure (Newbyl/THEval, ``Synchronization/lip_sync.py``): the inner-lip
  gap (mean of 8 upper and 8 lower inner-lip points) over the interocular distance, and the
  RMS of 50 ms windows, each min-max normalised over the speech frames; ``m`` is the mean
  absolute difference. Real video gives 0.2528 and the score is ``1 - |m - 0.2528| / 0.2528``
  (a mouth that only mirrors loudness scores low too: real lips are not an envelope).
- Pearson r of that gap and that loudness.
- The offset where they correlate best (negative: the lips lead the sound).
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
# mouth corners; then THEval's inner-lip rows and eye corners.
FOREHEAD, CHIN, LIP_UP, LIP_LOW, CORNER_R, CORNER_L = 10, 152, 13, 14, 61, 291
THEVAL_UPPER = [191, 80, 81, 82, 13, 312, 311, 310]
THEVAL_LOWER = [95, 88, 178, 87, 14, 317, 402, 318]
THEVAL_EYES = [33, 133, 362, 263]  # (right outer, right inner), (left inner, left outer)
KEEP = [FOREHEAD, CHIN, LIP_UP, LIP_LOW, CORNER_R, CORNER_L, *THEVAL_UPPER, *THEVAL_LOWER,
        *THEVAL_EYES]
_UP = slice(6, 14)
_LOW = slice(14, 22)
_EYE_R, _EYE_L = slice(22, 24), slice(24, 26)
THEVAL_REAL = 0.2528  # THEval's mean difference of real video
THEVAL_GOAL = 0.95
RMS_SECONDS = 0.05
# The hair above the mesh's top point, as a share of the forehead-to-chin length (an adult's
# crown sits ~0.3 of that above the hairline); used for the informational "crown" margin.
CROWN = 0.3
MAX_LAG_FRAMES = 10
MIN_LIP_SECONDS = 2.0  # of speech frames: less is too little to judge the lips (a failure)
LIPS_R_GOAL = 0.3
LAG_GOAL_MS = (-120.0, 40.0)  # lips up to 120 ms early, at most 40 ms late

GOALS: dict[str, str] = {
    "face": "face found in >= 95 % of frames",
    "head": "forehead top >= 5 % below the top edge and chin above the bottom, every frame",
    "lips": "inner-lip gap follows the 50 ms loudness over the speech frames (VAD): "
            "Pearson r >= 0.3 (at least 2 s of speech)",
    "lag": "best offset of lips vs loudness over the speech frames: lips 120 ms early to "
           "40 ms late",
    "theval": "THEval lip-sync score 1 - |m - 0.2528| / 0.2528 >= 0.95 over the speech frames",
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
    speech: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # VAD speech frames
    openness: np.ndarray = field(default_factory=lambda: np.zeros(0))  # THEval lip gap
    rms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # 50 ms RMS per frame
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


_VAD_LOCK = threading.Lock()
_VAD: list[object] = []


def speech_frames(mono: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """Frames inside speech as Silero VAD finds it (its default settings, 16 kHz), marked
    the way THEval marks them: ``int(start * fps)`` through ``int(end * fps)``."""
    import torch
    from scipy.signal import resample_poly
    from silero_vad import get_speech_timestamps, load_silero_vad

    out = np.zeros(frames, bool)
    if mono.size < rate // 10 or frames == 0:
        return out
    g = math.gcd(rate, 16000)
    wav = resample_poly(mono.astype(np.float64), 16000 // g, rate // g).astype(np.float32)
    with _VAD_LOCK:
        if not _VAD:
            _VAD.append(load_silero_vad(onnx=True))
        spans = get_speech_timestamps(torch.from_numpy(wav), _VAD[0], sampling_rate=16000,
                                      return_seconds=True)
    for span in spans:
        start, end = int(float(span["start"]) * fps), int(float(span["end"]) * fps)
        out[max(start, 0):min(end + 1, frames)] = True
    return out


def rms_50ms(mono: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """RMS of 50 ms windows (hop 50 ms, centred), read at each frame's start time (THEval)."""
    import librosa

    if mono.size == 0:
        return np.zeros(frames)
    hop = int(rate * RMS_SECONDS)
    rms = librosa.feature.rms(y=mono.astype(np.float32), frame_length=hop, hop_length=hop)[0]
    times = librosa.frames_to_time(np.arange(len(rms)), sr=rate, hop_length=hop)
    series: np.ndarray = np.interp(np.arange(frames) / fps, times, rms)
    return series


def lip_openness(lm: np.ndarray) -> np.ndarray:
    """THEval's mouth openness per frame: vertical distance of the mean upper and mean lower
    inner-lip points over the horizontal distance of the eyes' centres (NaN: no face)."""
    upper = lm[:, _UP, 1].mean(axis=1)
    lower = lm[:, _LOW, 1].mean(axis=1)
    eyes = np.abs(lm[:, _EYE_L, 0].mean(axis=1) - lm[:, _EYE_R, 0].mean(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        opening: np.ndarray = np.where(eyes > 0, np.abs(upper - lower) / eyes, np.nan)
    return opening


def _minmax(x: np.ndarray) -> np.ndarray:
    scaled: np.ndarray = (x - np.min(x)) / (np.max(x) - np.min(x) + 1e-8)
    return scaled


def theval_difference(openness: np.ndarray, rms: np.ndarray, speech: np.ndarray) -> float:
    """THEval's ``m``: mean |openness - loudness| over the speech frames that show a face,
    both min-max normalised over those frames (NaN when fewer than 2)."""
    mask = speech & np.isfinite(openness)
    if mask.sum() < 2:
        return math.nan
    return float(np.mean(np.abs(_minmax(openness[mask]) - _minmax(rms[mask]))))


def theval_score(m: float) -> float:
    """``1 - |m - 0.2528| / 0.2528``: 1 for the mean difference of real video."""
    return 1.0 - abs(m - THEVAL_REAL) / THEVAL_REAL


def best_offset_ms(lips: np.ndarray, sound: np.ndarray, mask: np.ndarray, fps: float,
                   reach: int = MAX_LAG_FRAMES) -> tuple[float, float]:
    """(offset ms, r there): the shift of the lips against the sound where they correlate
    best, using only pairs of frames that are both in ``mask`` (speech, a face); positive:
    the lips come late. Refined by a parabola through the peak and its neighbours."""
    n = len(lips)
    ok = mask & np.isfinite(lips)
    corr = []
    for k in range(-reach, reach + 1):
        i = np.arange(max(0, -k), min(n, n - k))
        keep = ok[i] & ok[i + k]
        corr.append(_pearson(lips[i + k][keep], sound[i][keep]) if keep.sum() >= 3 else math.nan)
    values = np.array(corr)
    if not np.isfinite(values).any():
        return math.nan, math.nan
    j = int(np.nanargmax(values))
    shift = float(j - reach)
    if 0 < j < len(values) - 1 and np.isfinite(values[j - 1:j + 2]).all():
        y0, y1, y2 = values[j - 1], values[j], values[j + 1]
        den = y0 - 2 * y1 + y2
        if abs(den) > 1e-12:
            shift += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    return shift * 1000.0 / fps, float(values[j])


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

def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def longest_run(mask: np.ndarray) -> int:
    """The longest run of true values in ``mask``."""
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
    # The lips, judged over the speech frames alone (see the module's notes).
    said = speech_frames(mono, media.rate, fps, n)
    opening = lip_openness(lm)
    rms = rms_50ms(mono, media.rate, fps, n)
    judged = said & np.isfinite(opening)
    speech_s = float(judged.sum()) / fps
    info["speech"] = speech_s
    if speech_s >= MIN_LIP_SECONDS:
        r = _pearson(opening[judged], rms[judged])
        lag, _ = best_offset_ms(opening, rms, judged, fps)
        m = theval_difference(opening, rms, said)
        score = theval_score(m) if math.isfinite(m) else math.nan
        info["theval_m"] = m
        checks["lips"] = Check("lips", None if math.isnan(r) else r,
                               not math.isnan(r) and r >= LIPS_R_GOAL,
                               f"over {speech_s:.1f} s of speech")
        checks["lag"] = Check("lag", None if math.isnan(lag) else lag,
                              not math.isnan(lag) and LAG_GOAL_MS[0] <= lag <= LAG_GOAL_MS[1],
                              "ms, negative: the lips lead")
        checks["theval"] = Check("theval", None if math.isnan(score) else score,
                                 not math.isnan(score) and score >= THEVAL_GOAL, f"m {m:.4f}")
    else:
        # Too little speech to say anything about the lips: a failure, not a pass (a test
        # that wants its lips judged says enough).
        note = f"only {speech_s:.1f} s of speech with a face: too little to judge the lips"
        for name in ("lips", "lag", "theval"):
            checks[name] = Check(name, None, False, note)
    voice_s = float(active.sum()) / fps

    small = media.frames[:, ::4, ::4].astype(np.int16) if n else media.frames
    diffs = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2, 3)) if n > 1 else np.zeros(0)
    still = np.r_[False, diffs < 0.25]
    frozen = longest_run(still & speaking(active, fps)) / fps if n else 0.0
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
    return Report(str(path), (w, h), fps, checks, lm, gap, env, active, said, opening, rms,
                  info, media if keep_media else None)


# -------------------------------------------------------------------------------- table

COLUMNS = [("face %", "face", "{:.0f}"), ("fore %", "forehead", "{:.1f}"),
           ("crown %", "crown", "{:.1f}"), ("chin %", "chin", "{:.1f}"),
           ("speech s", "speech", "{:.1f}"), ("THEval", "theval", "{:.3f}"),
           ("m", "theval_m", "{:.3f}"), ("lip r", "lips", "{:.2f}"),
           ("lag ms", "lag", "{:+.0f}"),
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
