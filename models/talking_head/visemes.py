"""Speech -> per-frame mouth controls for the talking-head renderers.

Four controls per video frame, each in [0, 1]:

- ``open``: jaw/lip opening, from the loudness envelope, scaled by the first formant (open
  vowels such as /a/ have a high F1, /i/ and /u/ a low one);
- ``spread``: lips pulled sideways (/i/, /e/): a high second formant;
- ``round``: lips rounded and narrowed (/o/, /u/): a low second formant;
- ``close``: lips pressed together (/m/, /b/, /p/), found in the audio at 5 ms resolution
  (:func:`bilabial_closures`): a nasal murmur or voice bar (nearly all energy below 1 kHz)
  ended by a release (louder and brighter within 40 ms). Silent closures (/p/ vs /t/, /k/)
  cannot be told apart from the audio and stay open; phoneme timing closes them.

When the speech engine knows its phonemes (``Speech.phonemes``), their timing replaces the
guesses: vowels set the shape, m/b/p close the lips. Pauses (silence, from the audio)
close the lips in both cases. Everything is
numpy; an LPC of order 10-12 per 40 ms frame gives the formants (cheap: a few ms per second
of audio).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.base import Speech

ANALYSIS_RATE = 11025
SYLLABLE_WINDOW = 0.2  # s: the neighbourhood a syllable's loudness is weighed against
LOUD_FLOOR = 0.2  # the opening of the quietest syllable, relative to the loudest
STRESS_WINDOW = 0.16  # s: a syllable's loudness is the loudest moment this close to it
STRESS_RANGE = 20.0  # dB under the loud syllables where a syllable opens least
SPAN_DB = 38.0  # dB: the loudness envelope spans this far under the loud frames (0 .. 1)
LIPS_LEAD = 0.02  # s: the lips meet for /m b p/ this far ahead of the closure's sound
OPEN_GAIN = 0.75  # the widest vowel's opening, as a share of the rig's full jaw drop
OPEN_CURVE = 0.7  # English: the opening is the jaw target to this power (see from_phonemes)
JAW_REACH = 0.34  # inner-lip gap (mouth widths) the rig's full ``open`` adds
PARTING = 0.25  # the least opening of lips that part, on a closed-mouth photo
BILABIALS = frozenset({"m", "b", "p", "my", "by", "py"})
VOWEL_SHAPES: dict[str, tuple[float, float, float]] = {
    # vowel: (open, spread, round) — Japanese vowels, with /u/ only lightly rounded
    "a": (1.0, 0.0, 0.0), "i": (0.4, 1.0, 0.0), "u": (0.4, 0.0, 0.75),
    "e": (0.6, 0.65, 0.0), "o": (0.65, 0.0, 1.0),
}


@dataclass(frozen=True)
class MouthTrack:
    """Per-frame mouth controls (each an array of ``frames`` floats in [0, 1])."""

    open: np.ndarray
    spread: np.ndarray
    round: np.ndarray
    close: np.ndarray
    envelope: np.ndarray  # normalized loudness per frame, for metrics
    fps: int

    @property
    def frames(self) -> int:
        return len(self.open)


def frame_count(duration: float, fps: int) -> int:
    """Frames covering ``duration`` seconds: the last frame starts before the audio ends."""
    return max(1, int(np.ceil(duration * fps - 1e-6)))


def frame_times(n: int, fps: float) -> np.ndarray:
    """The middle of each of ``n`` video frames, in seconds."""
    times: np.ndarray = (np.arange(n) + 0.5) / fps
    return times


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32)
    from scipy.signal import resample_poly

    g = np.gcd(rate, target)
    resampled: np.ndarray = resample_poly(samples, target // g, rate // g).astype(np.float32)
    return resampled


def _frames(x: np.ndarray, n: int, hop: float, win: int) -> np.ndarray:
    """``n`` windows of ``win`` samples centred on each video frame's midpoint."""
    centers = ((np.arange(n) + 0.5) * hop).astype(np.int64)
    starts = centers - win // 2
    padded = np.pad(x, (win, win))
    idx = starts[:, None] + win + np.arange(win)[None, :]
    frames: np.ndarray = padded[idx]
    return frames


def _lpc(frame: np.ndarray, order: int) -> np.ndarray | None:
    """LPC coefficients by autocorrelation + Levinson-Durbin (None for silent frames)."""
    r = np.correlate(frame, frame, mode="full")[len(frame) - 1: len(frame) + order]
    if r[0] <= 1e-9:
        return None
    r = r.astype(np.float64)
    r[0] *= 1.0 + 1e-4  # white-noise correction keeps the recursion stable
    a = np.zeros(order + 1)
    a[0] = 1.0
    err = r[0]
    for i in range(1, order + 1):
        acc = r[i] + np.dot(a[1:i], r[i - 1:0:-1])
        k = -acc / err
        a[1:i] = a[1:i] + k * a[i - 1:0:-1]
        a[i] = k
        err *= 1.0 - k * k
        if err <= 0:
            return None
    return a


def formants(frame: np.ndarray, rate: int = ANALYSIS_RATE, order: int = 12) -> tuple[float, float]:
    """(F1, F2) in Hz of one windowed frame; (0, 0) when none can be found."""
    a = _lpc(frame, order)
    if a is None:
        return 0.0, 0.0
    roots = np.roots(a)
    roots = roots[np.imag(roots) > 0.01]
    freqs = np.angle(roots) * rate / (2 * np.pi)
    bands = -0.5 * rate / np.pi * np.log(np.abs(roots) + 1e-12)
    keep = (freqs > 200) & (freqs < 4000) & (bands < 500)
    found = np.sort(freqs[keep])
    if len(found) < 2:
        return (float(found[0]), 0.0) if len(found) else (0.0, 0.0)
    return float(found[0]), float(found[1])


def _smooth(x: np.ndarray, attack: float, release: float) -> np.ndarray:
    """One-pole follower: fast ``attack`` toward higher values, slower ``release``."""
    out = np.empty_like(x)
    y = float(x[0]) if len(x) else 0.0
    for i, v in enumerate(x):
        coeff = attack if v > y else release
        y += coeff * (v - y)
        out[i] = y
    return out


def bilabial_closures(x: np.ndarray, rate: int = ANALYSIS_RATE) -> list[tuple[float, float]]:
    """(start, end) seconds of likely lip closures (/m/, /b/) in speech ``x``.

    Frames of 10 ms every 5 ms. A closure is a run of 20-160 ms whose energy is nearly all
    below 1 kHz (share >= 0.95, centroid < 500 Hz): a nasal murmur (/m/, at most 20 dB
    under the loudest speech) or a voice bar (/b/, 12-38 dB under), ended by a *release*:
    within 40 ms the energy rises by >= 4 dB (murmur) or >= 10 dB (voice bar) and the
    centroid grows 2.5-fold. The release is what sets /m/ apart from the moraic /N/, which
    fades into the next consonant or a pause. Thresholds were chosen on 6 OpenJTalk
    sentences with exact phoneme timing: 18 of 29 m/b/p found, 16 of 81 other consonants
    wrongly (the looser 4 dB / 2x / -25 dB: 20 of 29, but 24 of 81). Silent closures (/p/
    and /t/, /k/) look alike in the audio and are left open.
    """
    hop, win = max(1, rate // 200), max(2, rate // 100)
    n = (len(x) - win) // hop + 1
    if n < 8:
        return []
    idx = np.arange(n)[:, None] * hop + np.arange(win)[None, :]
    frames = x[idx] * np.hanning(win)[None, :]
    spec = np.abs(np.fft.rfft(frames, n=256, axis=1)) ** 2
    freqs = np.fft.rfftfreq(256, 1.0 / rate)
    total = spec.sum(axis=1) + 1e-12
    db = 10 * np.log10(total / win + 1e-12)
    db = db - float(np.percentile(db, 97))
    low_share = spec[:, freqs < 1000].sum(axis=1) / total
    centroid = (spec * freqs[None, :]).sum(axis=1) / total
    nasal = (low_share >= 0.95) & (centroid < 500) & (db > -38)
    out: list[tuple[float, float]] = []
    ahead = max(1, int(0.04 * rate / hop))
    i = 0
    while i < n:
        if not nasal[i]:
            i += 1
            continue
        j = i
        while j < n and nasal[j]:
            j += 1
        length = (j - i) * hop / rate
        level = float(np.median(db[i:j]))
        after = slice(j, min(n, j + ahead))
        if 0.02 <= length <= 0.16 and after.stop > after.start:
            rise = float(db[after].max()) - float(db[max(i, j - 2):j].mean())
            brighter = float(centroid[after].max()) >= 2.5 * float(np.median(centroid[i:j]))
            murmur = level > -20 and rise >= 4
            voice_bar = -38 < level <= -12 and rise >= 10
            if brighter and (murmur or voice_bar):
                out.append((i * hop / rate, (j * hop + win) / rate))
        i = j
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    squashed: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return squashed


def analyze(speech: Speech, fps: int = 25) -> MouthTrack:
    """Mouth controls for every video frame of ``speech`` (phonemes win when present)."""
    audio = speech.audio
    n = frame_count(audio.duration, fps)
    x = _resample(audio.samples, audio.sample_rate, ANALYSIS_RATE)
    hop = ANALYSIS_RATE / fps
    win = int(0.04 * ANALYSIS_RATE)
    frames = _frames(x, n, hop, win)
    window = np.hanning(win).astype(np.float32)
    rms = np.sqrt(np.mean((frames * window) ** 2, axis=1) + 1e-12)
    envelope = _level(20 * np.log10(rms + 1e-9))
    speaking = envelope > 0.3

    f1 = np.zeros(n)
    f2 = np.zeros(n)
    emphasized = np.append(frames[:, :1], frames[:, 1:] - 0.94 * frames[:, :-1], axis=1)
    for i in np.nonzero(speaking)[0]:
        f1[i], f2[i] = formants(emphasized[i] * window)

    open_ = np.clip((envelope - 0.25) / 0.6, 0.0, 1.0)
    valid = (f1 > 0) & (f2 > 0)
    f1_scale = np.where(valid, np.clip((f1 - 250.0) / 550.0, 0.0, 1.0), 0.6)
    open_ = open_ * (0.35 + 0.65 * f1_scale)
    # Syllables: the opening follows the loudness *against its neighbourhood* (the dip
    # between two syllables closes the jaw part way even when both are loud), so a loud
    # phrase is not one held-open mouth.
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    reach = max(3, int(round(SYLLABLE_WINDOW * fps)) | 1)
    trough = minimum_filter1d(envelope, reach, mode="nearest")
    crest = maximum_filter1d(envelope, reach, mode="nearest")
    dip = np.clip((crest - envelope) / np.maximum(crest - trough, 0.15), 0.0, 1.0)
    open_ = open_ * (1.0 - 0.7 * dip)  # a held vowel (no dip near it) stays open
    spread = np.where(valid, _sigmoid((f2 - 1750.0) / 180.0), 0.0) * np.clip(envelope * 2, 0, 1)
    round_ = np.where(valid & (f1 < 650), _sigmoid((1150.0 - f2) / 150.0), 0.0)
    round_ = round_ * np.clip(envelope * 2, 0, 1)

    # Bilabial closures found at 5 ms resolution: the frames they cover (at least the frame
    # nearest their middle) close the lips.
    close = np.zeros(n)
    times = frame_times(n, fps)
    for start, end in bilabial_closures(x, ANALYSIS_RATE):
        close[(times >= start) & (times <= end)] = 1.0
        close[int(np.clip(np.argmin(np.abs(times - (start + end) / 2)), 0, n - 1))] = 1.0
    return _finish(open_, spread, round_, close, envelope, fps)


def _finish(open_: np.ndarray, spread: np.ndarray, round_: np.ndarray, close: np.ndarray,
            envelope: np.ndarray, fps: int, spoken: np.ndarray | None = None) -> MouthTrack:
    """Shift slightly earlier (lips lead the sound), smooth, and keep closures closed."""
    lead = 1 if fps >= 20 else 0

    def early(a: np.ndarray) -> np.ndarray:
        return np.r_[a[lead:], np.repeat(a[-1:], lead)] if lead and len(a) > lead else a

    k = 0.65 * 25.0 / fps
    open_ = _smooth(early(open_), min(1.0, k), min(1.0, k * 0.9))
    spread = _smooth(early(spread), min(1.0, k * 0.8), min(1.0, k * 0.6))
    round_ = _smooth(early(round_), min(1.0, k * 0.8), min(1.0, k * 0.6))
    # Lips close a little before the sound and stay closed through it.
    close = np.clip(np.maximum(early(close), close), 0.0, 1.0)
    # Pauses close the lips too: a photo with an open laugh must not keep it open through
    # the silence before, between and after phrases (on a closed-mouth photo the close
    # shape only presses the lips a little). They meet over ~3 frames, part at once.
    silent = 1.0 - np.clip((envelope - 0.08) / 0.22, 0.0, 1.0)
    if spoken is not None:  # a frame inside a phoneme is no pause, however quiet
        silent = silent * (1.0 - spoken)
    pause = _smooth(early(silent), 0.45, 0.85)
    close = np.maximum(close, np.where(pause > 0.02, pause, 0.0))
    open_ = open_ * (1.0 - close)
    return MouthTrack(open_.astype(np.float32), spread.astype(np.float32),
                      round_.astype(np.float32), close.astype(np.float32),
                      envelope.astype(np.float32), fps)


def from_phonemes(speech: Speech, fps: int = 25) -> MouthTrack:
    """Mouth controls from the phoneme timeline (:mod:`~models.talking_head.articulation`):
    visemes with coarticulation, read ahead of the sound; every m/b/p closes the lips on at
    least one frame, timed with the closure's sound.

    How wide a syllable opens depends on the language the timeline spells. Japanese (no
    reduced vowels) scales each syllable by its loudness (:func:`stress`): a devoiced vowel
    or a phrase's fading end opens less. English marks its unstressed syllables in the
    vowels themselves (ə ɪ ʊ, already narrower in the table), so its loudness is not
    counted again; and its jaw targets are read on a concave curve (``OPEN_CURVE``): a
    speaker's jaw hardly rises through a consonant cluster between two vowels, but the
    clusters' targets (each consonant timed 40-60 ms), read straight, pulled the opening down
    so far that the lips showed shut through most of a phrase (inner-lip gap under 0.05 eye
    distances in 56-65 % of the spoken frames on a closed-mouth photo).
    """
    from models.talking_head.articulation import LEAD, articulate, reduces_vowels, sample

    env = loudness(speech, fps)
    n = len(env)
    times = frame_times(n, fps)
    ahead = times + LEAD
    c = articulate(speech.phonemes, speech.audio.duration + LEAD + 1.0 / fps)
    open_ = sample(c.open, ahead)
    spread = sample(c.spread, ahead)
    round_ = sample(c.round, ahead)
    lips_at = times + LIPS_LEAD  # the lips meet when the closure sounds, not a jaw's lead early
    close = sample(c.close, lips_at)
    if reduces_vowels(speech.phonemes):
        open_ = (OPEN_GAIN * np.clip(open_, 0.0, 1.0)) ** OPEN_CURVE
    else:
        open_ = OPEN_GAIN * open_ * (LOUD_FLOOR + (1.0 - LOUD_FLOOR) * stress(env, ahead, fps))
    for start, end in c.bilabials:  # the lips meet through m/b/p, on one frame at least
        inside = (lips_at >= start) & (lips_at <= end)
        inside[int(np.clip(np.argmin(np.abs(lips_at - (start + end) / 2)), 0, n - 1))] = True
        close[inside] = 1.0
        open_[inside] = 0.0
    return MouthTrack(open_.astype(np.float32), spread.astype(np.float32),
                      round_.astype(np.float32), close.astype(np.float32),
                      env.astype(np.float32), fps)


def stress(env: np.ndarray, ahead: np.ndarray, fps: int = 25) -> np.ndarray:
    """How wide each frame's syllable opens for its loudness (0: quiet .. 1: stressed).

    A syllable's loudness, not the moment's: the loudest frame within ``STRESS_WINDOW``
    of it, read as far ahead as the shapes (so it scales the syllable being formed). Read
    frame by frame, the loudness dipped at every consonant and word boundary and closed the
    lips with it, though a consonant's own shape already says how far the jaw rises; the
    lips then rose and fell with the voice's envelope. ``env`` spans ``SPAN_DB``; a syllable
    ``STRESS_RANGE`` dB under the loud ones (a phrase's fading end) opens least.
    """
    from scipy.ndimage import maximum_filter1d

    loud = np.interp(ahead, frame_times(len(env), fps), env)
    loud = np.clip(1.0 - (1.0 - loud) * SPAN_DB / STRESS_RANGE, 0.0, 1.0)
    reach = max(1, int(round(STRESS_WINDOW * fps)))
    syllable: np.ndarray = maximum_filter1d(loud, reach, mode="nearest")
    return syllable


def loudness(speech: Speech, fps: int = 25) -> np.ndarray:
    """Normalised loudness per video frame (0: ``SPAN_DB`` under the loud frames, 1: loud)."""
    audio = speech.audio
    n = frame_count(audio.duration, fps)
    x = _resample(audio.samples, audio.sample_rate, ANALYSIS_RATE)
    win = int(0.04 * ANALYSIS_RATE)
    frames = _frames(x, n, ANALYSIS_RATE / fps, win)
    window = np.hanning(win).astype(np.float32)
    rms = np.sqrt(np.mean((frames * window) ** 2, axis=1) + 1e-12)
    return _level(20 * np.log10(rms + 1e-9))


def _level(db: np.ndarray) -> np.ndarray:
    """Frame levels (dB) as 0 (``SPAN_DB`` under the loud frames) .. 1 (loud)."""
    peak = np.percentile(db, 95) if len(db) > 1 else db.max()
    floor = max(peak - SPAN_DB, db.min())
    level: np.ndarray = np.clip((db - floor) / max(peak - floor, 1e-3), 0.0, 1.0)
    return level


def fit_to_photo(track: MouthTrack, photo_gap: float) -> MouthTrack:
    """The track for a portrait whose lips are ``photo_gap`` mouth widths apart (a laugh, a
    smile with teeth): the photo's own opening is the first part of every opening.

    The rig's ``open`` drops the jaw from wherever the photo's lips are; on an open-mouth
    photo a consonant's small ``open`` left the lips as far apart as the photo had them, so
    the mouth hung open through the words (lips that barely moved between syllables). Here
    an opening smaller than the photo's closes the photo's lips part way instead, and only
    what is wider than the photo's opening drops the jaw.
    """
    if photo_gap <= 0.01:
        # Closed lips in the photo: a small opening must still part them visibly (a thin
        # dark line read as closed lips, so the quieter syllables never opened at all).
        parted = track.open + PARTING * (1.0 - np.exp(-track.open / 0.05))
        return MouthTrack(np.clip(parted, 0.0, 1.0).astype(np.float32), track.spread,
                          track.round, track.close, track.envelope, track.fps)
    aperture = track.open * JAW_REACH * (1.0 - track.close)
    inside = aperture <= photo_gap
    close = np.where(inside, np.maximum(track.close, 1.0 - aperture / photo_gap), track.close)
    open_ = np.where(inside, 0.0, (aperture - photo_gap) / JAW_REACH)
    return MouthTrack(open_.astype(np.float32), track.spread, track.round,
                      np.clip(close, 0.0, 1.0).astype(np.float32), track.envelope, track.fps)


def mouth_track(speech: Speech, fps: int = 25) -> MouthTrack:
    """The best track the inputs allow: phoneme-driven when timing is known."""
    if speech.phonemes:
        return from_phonemes(speech, fps)
    return analyze(speech, fps)
