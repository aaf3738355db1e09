"""Frame-selection voice matching (DSP): speech rebuilt from the person's own recorded
spectral envelopes with the WORLD vocoder. Not cloning: nothing learns the voice.

The idea is kNN-VC's (Baas et al., 2023) without its neural parts: every 5 ms frame of the
synthesized speech is analysed by WORLD (F0, spectral envelope, aperiodicity); its envelope,
coded as 40 mel-cepstral values with the speaker's average removed (so that frames compare
by what is said, not by whose voice it is), is replaced by the mean of its ``K`` nearest
frames among the profile's recordings, voiced frames among voiced ones, unvoiced among
unvoiced. The F0 contour keeps its shape and moves to the person's log-F0 median and spread;
each frame keeps its own loudness (cepstrum c0) and aperiodicity. Above :data:`CROSSOVER_HZ`
(where 16 kHz recordings hold nothing) the original band is kept.

Measured against four LibriSpeech speakers by an independent d-vector encoder (held-out
recordings, ``bench/voice_evolve.py``): English speech 0.34 -> 0.61, Japanese speech said
from English clips 0.20 -> 0.42; recognisability by an English recogniser (pocketsphinx)
unchanged within its noise. Needs a few seconds of voiced speech in the profile; with less,
it declines and the next converter (Praat matching) serves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from models.base import Audio, EngineSettings, VoiceTarget, module_available
from models.errors import BackendUnavailable
from models.speech.dsp import resample_array

ANALYSIS_RATE = 16000
FRAME_MS = 5.0
CODED_DIMS = 40
K = 4
SMOOTH_FRAMES = 3
LOUD_PERCENTILE = 30.0
"""Frames of the recordings quieter than this percentile (of c0) are pauses: not used."""
MIN_VOICED_FRAMES = 400
"""2 s of voiced speech: fewer frames cover too few sounds to rebuild speech from."""
CROSSOVER_HZ = 7000.0
BLOCK = 2048
POOLS_CACHED = 8


@dataclass(frozen=True)
class World:
    """WORLD's analysis of a signal at :data:`ANALYSIS_RATE`."""

    f0: np.ndarray  # (frames,) Hz, 0 where unvoiced
    coded: np.ndarray  # (frames, CODED_DIMS) coded spectral envelope (c0 = level)
    aperiodicity: np.ndarray  # (frames, bins)
    fft_size: int


def analyze(samples: np.ndarray, rate: int) -> World:
    import pyworld

    x = resample_array(np.asarray(samples, np.float32), rate, ANALYSIS_RATE).astype(np.float64)
    f0, times = pyworld.dio(x, ANALYSIS_RATE, frame_period=FRAME_MS)
    f0 = pyworld.stonemask(x, f0, times, ANALYSIS_RATE)
    envelope = pyworld.cheaptrick(x, f0, times, ANALYSIS_RATE)
    aperiodicity = pyworld.d4c(x, f0, times, ANALYSIS_RATE)
    coded = pyworld.code_spectral_envelope(envelope, ANALYSIS_RATE, CODED_DIMS)
    return World(f0, coded, aperiodicity, (envelope.shape[1] - 1) * 2)


@dataclass(frozen=True)
class FramePool:
    """The person's loud frames, by voicing, and their pitch statistics."""

    voiced: np.ndarray  # (n, CODED_DIMS)
    unvoiced: np.ndarray  # (m, CODED_DIMS)
    mean: np.ndarray  # (CODED_DIMS - 1,) average envelope shape (c1..), removed to compare
    log_f0_centre: float
    log_f0_spread: float

    @classmethod
    def of(cls, reference: Audio) -> FramePool:
        world = analyze(reference.samples, reference.sample_rate)
        loud = world.coded[:, 0] > np.percentile(world.coded[:, 0], LOUD_PERCENTILE)
        voiced = loud & (world.f0 > 0)
        unvoiced = loud & (world.f0 <= 0)
        if int(voiced.sum()) < MIN_VOICED_FRAMES:
            raise too_little_speech()
        pool = world.coded[loud]
        centre, spread = log_f0_stats(world.f0[voiced])
        return cls(world.coded[voiced], world.coded[unvoiced], pool[:, 1:].mean(axis=0),
                   centre, spread)


def too_little_speech() -> BackendUnavailable:
    return BackendUnavailable(
        "The profile's recordings hold too little voiced speech for frame matching.",
        code="VOICE_SERVICE_UNAVAILABLE", message_ja="プロファイルの録音に有声音が少なすぎます。")


def log_f0_stats(f0: np.ndarray) -> tuple[float, float]:
    """Median and spread (interquartile, scaled to a standard deviation) of log F0: robust
    to the octave errors a pitch tracker makes on a few frames."""
    log_f0 = np.log(f0[f0 > 0])
    low, high = np.percentile(log_f0, [25, 75])
    return float(np.median(log_f0)), float(max(high - low, 1e-3) / 1.349)


def nearest_mean(queries: np.ndarray, pool: np.ndarray, k: int | None = None) -> np.ndarray:
    """For each query row, the mean of its ``k`` nearest ``pool`` rows (squared distance),
    in blocks so that a long message does not build one huge distance matrix."""
    k = min(k or K, len(pool))
    out = np.empty((len(queries), pool.shape[1]), np.float64)
    pool_sq = (pool ** 2).sum(axis=1)
    for start in range(0, len(queries), BLOCK):
        q = queries[start:start + BLOCK]
        distance = pool_sq[None, :] - 2.0 * q @ pool.T
        idx = np.argpartition(distance, k - 1, axis=1)[:, :k]
        out[start:start + BLOCK] = pool[idx].mean(axis=1)
    return out


def convert(audio: Audio, pool: FramePool) -> Audio:
    """``audio`` rebuilt from ``pool``'s envelopes, at ``audio``'s rate and length."""
    import pyworld
    from scipy.ndimage import uniform_filter1d

    world = analyze(audio.samples, audio.sample_rate)
    source_loud = world.coded[:, 0] > np.percentile(world.coded[:, 0], LOUD_PERCENTILE)
    if not source_loud.any():  # silence: nothing to rebuild
        return audio
    shape = world.coded[:, 1:] - world.coded[source_loud, 1:].mean(axis=0)
    voiced = world.f0 > 0
    new = world.coded.copy()
    for mask, frames in ((voiced, pool.voiced), (~voiced, pool.unvoiced)):
        if mask.any():
            donors = frames if len(frames) >= K else pool.voiced
            new[mask, 1:] = nearest_mean(shape[mask], donors[:, 1:] - pool.mean) + pool.mean
    new[:, 1:] = uniform_filter1d(new[:, 1:], SMOOTH_FRAMES, axis=0)
    f0 = world.f0.copy()
    if voiced.sum() > 1:
        centre, spread = log_f0_stats(f0)
        f0[voiced] = np.exp((np.log(f0[voiced]) - centre) / spread * pool.log_f0_spread
                            + pool.log_f0_centre)
    envelope = pyworld.decode_spectral_envelope(np.ascontiguousarray(new), ANALYSIS_RATE,
                                                world.fft_size)
    rebuilt = pyworld.synthesize(f0, envelope, world.aperiodicity, ANALYSIS_RATE, FRAME_MS)
    low = resample_array(rebuilt.astype(np.float32), ANALYSIS_RATE, audio.sample_rate)
    return Audio(_with_high_band(low, audio), audio.sample_rate)


def _with_high_band(low: np.ndarray, original: Audio) -> np.ndarray:
    """``low`` (band-limited by the analysis rate) plus ``original`` above the crossover,
    trimmed or padded to the original's length."""
    n = len(original.samples)
    low = np.pad(low[:n], (0, max(0, n - len(low))))
    if original.sample_rate <= 2 * CROSSOVER_HZ:
        return low.astype(np.float32)
    from scipy.signal import butter, sosfiltfilt

    low_pass = butter(8, CROSSOVER_HZ, "lowpass", fs=original.sample_rate, output="sos")
    high_pass = butter(8, CROSSOVER_HZ, "highpass", fs=original.sample_rate, output="sos")
    mixed = sosfiltfilt(low_pass, low) + sosfiltfilt(high_pass, original.samples)
    return np.asarray(mixed, np.float32)


class FrameMatcher:
    """Voice converter: rebuild speech from the profile's recorded frames (see above)."""

    name = "frame_matching"
    method = "voice matching (frame selection from your recordings, WORLD vocoder)"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._pools: OrderedDict[str, FramePool | None] = OrderedDict()  # None: declined
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("pyworld")
        return (True, "frame selection from the profile's recordings (DSP, not cloning)") \
            if ok else (False, why)

    def close(self) -> None:
        with self._lock:
            self._pools.clear()

    def pool(self, target: VoiceTarget) -> FramePool:
        """The target's frame pool, analysed once per profile version (a reference found
        too short is remembered too, so each message does not analyse it again)."""
        with self._lock:
            known = target.key in self._pools
            if known:
                self._pools.move_to_end(target.key)
                found = self._pools[target.key]
        if not known:
            try:
                found = FramePool.of(target.reference)
            except BackendUnavailable:
                found = None
            with self._lock:
                self._pools[target.key] = found
                while len(self._pools) > POOLS_CACHED:
                    self._pools.popitem(last=False)
        if found is None:
            raise too_little_speech()
        return found

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        if audio.duration < 0.1:
            return audio
        return convert(audio, self.pool(target))
