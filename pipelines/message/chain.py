"""The one-click message: photo + words in, finished video out.

    image ─────────────────────────────┐
    voice ─> prosody ─> bgm ───────────┴─> video ─> subtitles (optional)

Each arrow is a stage (``pipelines.tasks.Stage``): its own queue task, retries and time
limit; the image and voice branches run side by side. Stages pass storage keys and small
facts, never media bytes, so any worker on any machine can run any stage and a retry resumes
from the stage that failed. Every stage reports which engine made its result.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from models.base import Audio, Speech, StageReport, sub_progress
from models.errors import StudioError
from pipelines.media import decode_audio, decode_image, encode_png, encode_wav, ffmpeg_exe
from pipelines.message.outputs import (
    BgmOutput,
    Finished,
    ImageOutput,
    ProsodyOutput,
    SubtitlesOutput,
    VideoOutput,
    VoiceOutput,
    need,
    passed_over,
)
from pipelines.message.request import NO_MUSIC, MessageRequest
from pipelines.scratch import SUBTITLES_PREFIX, scratch_folder
from pipelines.tasks import JobContext, JobKind, Stage, StageHandler

KIND = "message.generate"
Outputs = dict[str, dict[str, Any]]  # each finished stage's output, as the queue stores it
StageOutput = ImageOutput | VoiceOutput | ProsodyOutput | BgmOutput | VideoOutput | SubtitlesOutput
MessageStage = Callable[[JobContext, MessageRequest, Finished], StageOutput]


def _load_audio(ctx: JobContext, key: str) -> Audio:
    return decode_audio(ctx.storage.get(key), target_rate=None)


# --------------------------------------------------------------------------- progress


class Ticking:
    """A stage's context whose progress never stalls for long.

    Some engines report nothing while they work (Kokoro synthesises a whole message in one
    call; the closed-form refiner solves in one go), so a person would watch a frozen bar
    for many seconds. While the stage is quiet for ``every`` seconds, this reports an
    *estimate* that creeps from the last real report toward ``ceiling`` (half the way in
    ``expected`` seconds, never reaching it); real reports pass through. What it shows never
    goes backwards. A cancel (or the stage's time limit) stops the ticking; the stage itself
    stops at its next real report, as before.
    """

    def __init__(self, ctx: JobContext, expected: float, every: float = 1.0,
                 ceiling: float = 0.97) -> None:
        self._ctx = ctx
        self.expected = max(expected, 0.1)
        self.every = every
        self.ceiling = ceiling
        self._lock = threading.Lock()
        self._last = 0.0  # the last real report
        self._shown = 0.0
        self._step = ""
        self._at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="stage-ticker")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def __enter__(self) -> Ticking:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def progress(self, fraction: float, step: str) -> None:
        with self._lock:
            self._last = max(self._last, fraction)
            self._shown = max(self._shown, fraction)
            self._step, self._at = step, time.monotonic()
            shown = self._shown
        self._ctx.progress(shown, step)

    def _tick(self) -> None:
        while not self._stop.wait(self.every / 2):
            with self._lock:
                quiet = time.monotonic() - self._at
                if quiet < self.every:
                    continue
                room = max(self.ceiling - self._last, 0.0)
                guess = self._last + room * (1.0 - 0.5 ** (quiet / self.expected))
                self._shown = max(self._shown, guess)
                shown, step = self._shown, self._step
            try:
                self._ctx.progress(shown, step)
            except StudioError:  # cancelled or out of time: the stage finds out itself
                return


def message_stage(expected: Callable[[MessageRequest], float]
                  ) -> Callable[[MessageStage], StageHandler]:
    """A typed stage as the queue runs it. The queue keeps the request and every stage's
    output as JSON: they are read into typed values here and the stage's output written back
    here, and nowhere else. The stage runs with a :class:`Ticking` context;
    ``expected(request)`` is its rough time in seconds."""

    def wrap(stage: MessageStage) -> StageHandler:
        @functools.wraps(stage)
        def run(ctx: JobContext, params: dict[str, Any], outputs: Outputs) -> dict[str, Any]:
            request = MessageRequest.from_params(params)
            with Ticking(ctx, expected(request)) as ticker:
                return stage(ticker, request, Finished.from_dicts(outputs)).as_dict()

        return run

    return wrap


# --------------------------------------------------------------------------- stages


@message_stage(lambda r: 3.0 + 3.0 * r.size.cost)
def image_stage(ctx: JobContext, request: MessageRequest, done: Finished) -> ImageOutput:
    from pipelines.image.framing import FramingOptions
    from pipelines.image.portrait import prepare_portrait, working_image

    size = request.size
    # A phone photo (12 MP) is far more than a 512 px frame can show: matting and framing
    # work on at most 4x the output's pixels (the framed crop still covers the output).
    photo = working_image(decode_image(ctx.storage.get(request.image_key)),
                          max_pixels=4 * size.pixels)
    options = FramingOptions.parse({"aspect": size.aspect, "size": size.long_side,
                                    "background": request.background})
    portrait = prepare_portrait(
        photo, detectors=ctx.chain("person_detection"), cutout_chain=ctx.chain("cutout"),
        refiner_chain=ctx.chain("refiner"), options=options, progress=ctx.progress)
    key = ctx.storage.put(ctx.new_key("processed/final", "png"), encode_png(portrait.image))
    operations = tuple(_report_dict(r) for r in portrait.reports)
    engines = {op["operation"]: op.get("method") for op in operations}
    return ImageOutput(key, tuple(portrait.face_box or ()), operations, engines,
                       engines.get("background_removal"),
                       any(bool(op.get("fallback_used")) for op in operations))


def _image_passed_over(operations: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    capability = {"background_removal": "cutout", "matte_refinement": "refiner",
                  "person_detection": "person_detection"}
    return [run for op in operations if op.get("operation") in capability
            for run in passed_over(capability[op["operation"]], op.get("details"))]


def _report_dict(report: StageReport) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    data["duration"] = round(float(report.duration), 3)
    return data


@message_stage(lambda r: 1.0 + 0.3 * len(r.text))
def voice_stage(ctx: JobContext, request: MessageRequest, done: Finished) -> VoiceOutput:
    from pipelines.voice.jobs import job_kit
    from pipelines.voice.ref import VoiceRef
    from pipelines.voice.speech import VoiceChoice

    choice = VoiceChoice.of(VoiceRef.parse(request.voice))
    speech, report = job_kit(ctx).synthesize(request.text, choice=choice,
                                             language=request.language, progress=ctx.progress)
    engine = report.method or report.backend or "tts"
    key = ctx.storage.put(ctx.new_key(f"voices/{engine}", "wav"), encode_wav(speech.audio))
    return VoiceOutput(
        key, speech.sentences, speech.phonemes, speech.audio.duration, report.backend,
        report.fallback_used, report.fallback_method, report.voice, report.method,
        {"tts": report.backend, "conversion": report.method}, _voice_passed_over(report.as_dict()))


def _voice_passed_over(report: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The speech chain's and the converter chain's passed-over engines (people's notes)."""
    return (*passed_over("tts", report),
            *passed_over("voice_converter", report.get("conversion")))


@message_stage(lambda r: 1.0 + 0.03 * len(r.text))
def prosody_stage(ctx: JobContext, request: MessageRequest, done: Finished) -> ProsodyOutput:
    from pipelines.sound.prosody import adjust, auto_emotion

    emotion = auto_emotion(request.text) if request.emotion == "auto" else request.emotion
    voice = _load_audio(ctx, need(done.voice, "voice").voice_key)
    adjusted, report = adjust(voice, {"emotion": emotion}, progress=ctx.progress)
    key = ctx.storage.put(ctx.new_key("prosody", "wav"), encode_wav(adjusted))
    scale = (adjusted.duration / voice.duration) if voice.duration else 1.0
    return ProsodyOutput(key, emotion, report.changes, adjusted.duration, scale,
                         time_map=report.time_map)


@message_stage(lambda r: 2.0)
def bgm_stage(ctx: JobContext, request: MessageRequest, done: Finished) -> BgmOutput:
    from pipelines.sound.music import MixOptions, mix_to_file
    from pipelines.sound.tracks import TrackStore

    voice = _load_audio(ctx, need(done.prosody, "prosody").prosody_key)
    options = MixOptions(bgm_volume=request.bgm_volume, output_format="m4a")
    # Every studio storage lists its keys (uploaded tracks); ArtifactStore does not say so.
    store = cast(TrackStore, ctx.storage)
    data, report, track = mix_to_file(voice, request.bgm, options, store=store,
                                      progress=ctx.progress)
    key = ctx.storage.put(ctx.new_key("bgm/mixes", "m4a"), data)
    return BgmOutput(key, track.id if track else None, options.lead_in, options.tail,
                     _jsonable(report.details))


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` as plain JSON (numpy values become lists and numbers)."""
    plain: dict[str, Any] = json.loads(
        json.dumps(details, default=lambda o: getattr(o, "tolist", str)(o)))
    return plain


# A message without music still opens and closes on a face at rest: the voice used to start
# on the first frame (the poster frame caught the mouth mid-word) and stop on the last.
QUIET_LEAD_IN = 0.4  # seconds of silence before the voice when there is no music
QUIET_TAIL = 0.4  # and after it


@message_stage(lambda r: 2.0 + 0.1 * len(r.text) * r.size.cost)
def video_stage(ctx: JobContext, request: MessageRequest, done: Finished) -> VideoOutput:
    from PIL import Image

    from pipelines.video.render import RenderOptions, render_talking_head

    voice_out = need(done.voice, "voice")
    prosody_out = need(done.prosody, "prosody")
    music = done.bgm
    voice = _load_audio(ctx, prosody_out.prosody_key)
    lead = music.lead_in if music else QUIET_LEAD_IN
    soundtrack = _load_audio(ctx, music.mix_key) if music else None
    # Lips follow the voice alone; the face idles through the lead-in and tail.
    total = (soundtrack.duration if soundtrack is not None
             else QUIET_LEAD_IN + voice.duration + QUIET_TAIL)
    padded = np.zeros(int(round(total * voice.sample_rate)), dtype=np.float32)
    start = int(round(lead * voice.sample_rate))
    end = min(padded.size, start + voice.samples.size)
    padded[start:end] = voice.samples[: end - start]
    track = Audio(padded, voice.sample_rate)
    if soundtrack is None:
        # No mix normalises a message without music: the voice track as delivered, silences
        # included, is brought to the same loudness a mix gets (-16 LUFS, true peak <= -1
        # dBTP); it was ~-12.6 LUFS.
        from pipelines.sound.loudness import normalize

        track, _ = normalize(track)
    speech = Speech(track, sentences=prosody_out.timed(voice_out.sentences, lead),
                    phonemes=prosody_out.timed(voice_out.phonemes, lead))
    image_out = need(done.image, "image")
    portrait = Image.open(io.BytesIO(ctx.storage.get(image_out.portrait_key)))
    portrait.load()
    with scratch_folder() as tmp:  # swept if this process is killed mid-render
        rendered = Path(tmp) / "talk.mp4"
        render_progress = sub_progress(ctx.progress, 0.0, 0.95)
        _, report = render_talking_head(
            ctx.chain("talking_head"), portrait, speech, output=rendered,
            render=RenderOptions(size=request.size, seed=request.seed), progress=render_progress)
        final = rendered
        if music is not None:
            final = Path(tmp) / "final.mp4"
            mix_path = Path(tmp) / "mix.m4a"
            mix_path.write_bytes(ctx.storage.get(music.mix_key))
            _mux(rendered, mix_path, final)
        ctx.progress(0.98, "store")
        key = ctx.new_key("videos/final", "mp4")
        ctx.storage.put(key, final.read_bytes())
    return VideoOutput(key, total, request.size.name, report.get("backend"),
                       bool(report.get("fallback_used")), report.get("fallback_method"),
                       speech.sentences, tuple(passed_over("talking_head", report)))


def _mux(video: Path, audio: Path, output: Path) -> None:
    """Swap the render's voice-only track for the mixed soundtrack (video copied as is)."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-i", str(audio),
           "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "copy",
           "-movflags", "+faststart", str(output)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)


@message_stage(lambda r: 1.0 + 0.1 * len(r.text) * r.size.cost)
def subtitles_stage(ctx: JobContext, request: MessageRequest, done: Finished
                    ) -> SubtitlesOutput:
    from pipelines.video import subtitles as subs

    video_out = need(done.video, "video")
    audio = _load_audio(ctx, need(done.prosody, "prosody").prosody_key)
    speech = Speech(audio, sentences=video_out.speech_sentences)
    cues = subs.cues_for(request.text, speech)
    srt_key = ctx.storage.put(ctx.new_key("videos/final", "srt"),
                              subs.to_srt(cues).encode("utf-8"))
    vtt_key = ctx.storage.put(ctx.new_key("videos/final", "vtt"),
                              subs.to_vtt(cues).encode("utf-8"))
    with scratch_folder(SUBTITLES_PREFIX) as tmp:
        source, target = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        source.write_bytes(ctx.storage.get(video_out.video_key))
        ctx.progress(0.2, "burn-in")
        subs.burn_in(source, target, cues)
        key = ctx.storage.put(ctx.new_key("videos/final", "mp4"), target.read_bytes())
    return SubtitlesOutput(key, srt_key, vtt_key, len(cues))


def finish(params: dict[str, Any], outputs: Outputs) -> dict[str, Any]:
    """The job's result (JSON, as the status routes serve it) from its finished stages."""
    request = MessageRequest.from_params(params)
    done = Finished.from_dicts(outputs)
    image, voice = need(done.image, "image"), need(done.voice, "voice")
    prosody, video = need(done.prosody, "prosody"), need(done.video, "video")
    music, subtitles = done.bgm, done.subtitles
    result: dict[str, Any] = {
        "video_key": (subtitles or video).video_key,
        "portrait_key": image.portrait_key,
        "audio_key": music.mix_key if music else prosody.prosody_key,
        "duration": video.duration,
        "size": request.size.name,
        "emotion": prosody.emotion,
        "text": request.text,
        "engines": {"image": image.engines, "voice": voice.engines, "video": video.backend},
        "fallback_used": image.fallback_used or voice.fallback_used or video.fallback_used,
        # each chain that passed an engine over, for the note people read (app.ui.fallback)
        "passed_over": [*_image_passed_over(image.operations), *voice.passed_over,
                        *video.passed_over],
    }
    if subtitles is not None:
        result["srt_key"] = subtitles.srt_key
        result["vtt_key"] = subtitles.vtt_key
    return result


# Weights: each stage's share (%) of the stages' summed time, measured with bench/message.py
# on the 2-core reference machine (warm engines; ~10 s Japanese message of 40 characters,
# 1 MP photo, 512x512, Kokoro, music; subtitles from one run with them on): image 7.4 s,
# voice 12.3 s, prosody 0.4 s, bgm 0.6 s, video 2.7 s, subtitles 1.5 s. Image runs beside
# voice -> prosody -> bgm, so the bar runs a little ahead of the clock while both branches
# work. Re-measure when Kokoro or the renderer get faster (they dominate).
STAGES = [
    Stage("image", image_stage, weight=30.0, retries=1, timeout=300),
    Stage("voice", voice_stage, weight=50.0, retries=2, timeout=300),
    Stage("prosody", prosody_stage, after=("voice",), weight=2.0, retries=1, timeout=300),
    Stage("bgm", bgm_stage, after=("prosody",), weight=2.0, retries=1, timeout=300,
          when=lambda p: str(p.get("bgm", "")).strip().lower() not in NO_MUSIC),
    Stage("video", video_stage, after=("image", "prosody", "bgm"), weight=11.0, retries=1,
          timeout=1200),
    Stage("subtitles", subtitles_stage, after=("video",), weight=6.0, retries=1, timeout=300,
          when=lambda p: bool(p.get("subtitles"))),
]

JOB = JobKind(KIND, stages=STAGES, finish=finish)
