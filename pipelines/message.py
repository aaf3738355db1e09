"""The one-click message: photo + words in, finished video out.

    image ─────────────────────────────┐
    voice ─> prosody ─> bgm ───────────┴─> video ─> subtitles (optional)

Each arrow is a stage (``pipelines.tasks.Stage``): its own queue task, retries and time
limit; the image and voice branches run side by side. Stages pass storage keys and small
facts, never media bytes, so any worker on any machine can run any stage and a retry resumes
from the stage that failed. Every stage reports which engine made its result.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Audio, Speech, Timing, sub_progress
from models.errors import InvalidInput, StudioError
from pipelines.media import (
    LIMITS,
    decode_audio,
    decode_image,
    encode_png,
    encode_wav,
    ffmpeg_exe,
    validate_text,
)
from pipelines.tasks import JobContext, Stage, staged_job

KIND = "message.generate"
SIZES = {"512x512": ("1:1", 512), "720x1280": ("9:16", 1280), "1280x720": ("16:9", 1280)}
BACKGROUNDS = ("blur", "transparent", "solid", "builtin")
NO_MUSIC = ("", "none", "off")
StageFn = Callable[[JobContext, dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class MessageRequest:
    """What a person asks for; validated before anything is queued."""

    image_key: str
    text: str
    voice: str | None = None  # built-in voice id, "voicevox:<style>", or a profile id
    language: str = "ja"
    emotion: str = "auto"
    bgm: str = "celebration"  # track id, mood, or "none"
    bgm_volume: float = 0.25
    size: str = "512x512"
    subtitles: bool = False
    background: str = "blur"
    seed: int = 0

    def params(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def validated(cls, **raw: Any) -> MessageRequest:
        text = validate_text(raw.get("text"), area="VOICE", limits=LIMITS)
        size = str(raw.get("size") or "512x512").lower().replace("×", "x")
        if size not in SIZES:
            raise InvalidInput(f"Unknown size {size!r}.", code="VIDEO_INVALID_SIZE",
                               message_ja=f"サイズ {size!r} には対応していません。",
                               details={"field": "size", "allowed": list(SIZES)})
        background = str(raw.get("background") or "blur")
        if background not in BACKGROUNDS:
            raise InvalidInput(f"Unknown background {background!r}.",
                               code="IMAGE_INVALID_FRAMING",
                               message_ja=f"背景 {background!r} には対応していません。",
                               details={"field": "background", "allowed": list(BACKGROUNDS)})
        language = str(raw.get("language") or _guess_language(text))
        if language not in ("ja", "en"):
            raise InvalidInput(f"Unsupported language {language!r}.",
                               code="VOICE_INVALID_LANGUAGE",
                               message_ja=f"未対応の言語 {language!r} です。",
                               details={"field": "language", "allowed": ["ja", "en"]})
        volume = float(raw.get("bgm_volume", 0.25))
        if not 0.0 <= volume <= 1.0:
            raise InvalidInput("bgm_volume must be between 0 and 1.", code="BGM_INVALID_PARAMS",
                               message_ja="bgm_volume は 0〜1 で指定してください。",
                               details={"field": "bgm_volume", "allowed": [0, 1]})
        return cls(
            image_key=str(raw["image_key"]), text=text,
            voice=(str(raw["voice"]).strip() or None) if raw.get("voice") else None,
            language=language, emotion=str(raw.get("emotion") or "auto"),
            bgm=str(raw.get("bgm") if raw.get("bgm") is not None else "celebration"),
            bgm_volume=volume, size=size, subtitles=bool(raw.get("subtitles", False)),
            background=background, seed=int(raw.get("seed", 0)),
        )


def _guess_language(text: str) -> str:
    """Japanese when the text has any kana or kanji, else English."""
    return "ja" if any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff"
                       for ch in text) else "en"


def _timings(items: tuple[Timing, ...] | list[list[Any]]) -> list[list[Any]]:
    out = []
    for item in items:
        if isinstance(item, Timing):
            out.append([round(item.start, 4), round(item.end, 4), item.text])
        else:
            out.append(list(item))
    return out


def _as_timings(rows: list[list[Any]], scale: float = 1.0, shift: float = 0.0
                ) -> tuple[Timing, ...]:
    return tuple(Timing(float(a) * scale + shift, float(b) * scale + shift, str(t))
                 for a, b, t in rows)


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


def ticking(expected: Callable[[dict[str, Any]], float]) -> Callable[[StageFn], StageFn]:
    """Run a stage with a :class:`Ticking` context; ``expected(params)`` is its rough time."""

    def wrap(stage: StageFn) -> StageFn:
        @functools.wraps(stage)
        def run(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
                ) -> dict[str, Any]:
            with Ticking(ctx, expected(params)) as ticker:
                return stage(ticker, params, outputs)  # type: ignore[arg-type]

        return run

    return wrap


# --------------------------------------------------------------------------- stages


def _pixels(params: dict[str, Any]) -> float:
    """The output's size relative to 512x512 (cost of framing and rendering scales with it)."""
    w, h = (int(v) for v in params["size"].split("x"))
    return w * h / (512 * 512)



@ticking(lambda p: 3.0 + 3.0 * _pixels(p))
def image_stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
                ) -> dict[str, Any]:
    from pipelines.framing import FramingOptions
    from pipelines.image import prepare_portrait, working_image

    aspect, long_side = SIZES[params["size"]]
    # A phone photo (12 MP) is far more than a 512 px frame can show: matting and framing
    # work on at most 4x the output's pixels (the framed crop still covers the output).
    width, height = (int(v) for v in params["size"].split("x"))
    photo = working_image(decode_image(ctx.storage.get(params["image_key"])),
                          max_pixels=4 * width * height)
    options = FramingOptions(aspect=aspect, size=long_side, background=params["background"])
    portrait = prepare_portrait(
        photo, detectors=ctx.chain("person_detection"), cutout_chain=ctx.chain("cutout"), refiner_chain=ctx.chain("refiner"),
        options=options, progress=ctx.progress)
    key = ctx.storage.put(ctx.new_key("processed/final", "png"), encode_png(portrait.image))
    operations = [_report_dict(r) for r in portrait.reports]
    engines = {op["operation"]: op.get("method") for op in operations}
    return {"portrait_key": key, "face_box": list(portrait.face_box or []),
            "operations": operations, "engines": engines,
            "backend": engines.get("background_removal"),
            "fallback_used": any(op.get("fallback_used") for op in operations)}


def _report_dict(report: Any) -> dict[str, Any]:
    if isinstance(report, dict):
        return report
    data = dict(report.__dict__)
    data["duration"] = round(float(data.get("duration", 0.0)), 3)
    return data


@ticking(lambda p: 1.0 + 0.3 * len(p["text"]))
def voice_stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
                ) -> dict[str, Any]:
    kit = _voice_kit(ctx)
    voice = params.get("voice")
    kw: dict[str, Any] = {"language": params["language"], "progress": ctx.progress}
    if voice and voice.startswith("openvoice_"):
        kw.update(voice_type="profile", profile_id=voice)
    elif voice and voice.startswith("voicevox:"):
        kw.update(voice_type="voicevox", voice=voice)
    else:
        kw.update(voice_type="builtin", voice=voice)
    speech, report = kit.synthesize(params["text"], **kw)
    engine = report.get("method") or report.get("backend") or "tts"
    key = ctx.storage.put(ctx.new_key(f"voices/{engine}", "wav"), encode_wav(speech.audio))
    return {"voice_key": key, "sentences": _timings(speech.sentences),
            "phonemes": _timings(speech.phonemes), "duration": round(speech.audio.duration, 3),
            "backend": report.get("backend"), "fallback_used": report.get("fallback_used"),
            "fallback_method": report.get("fallback_method"), "voice": report.get("voice"),
            "method": report.get("method"), "engines": {"tts": report.get("backend"),
                                                        "conversion": report.get("method")}}


def _voice_kit(ctx: JobContext) -> Any:
    from pipelines.voice import ProfileStore, VoiceKit

    return VoiceKit(tts=ctx.chain("tts"), encoder=ctx.chain("voice_encoder"),
                    converters=ctx.chain("voice_converter"), store=ProfileStore(ctx.storage),
                    cache_dir=ctx.engine_settings.cache_dir)


@ticking(lambda p: 1.0 + 0.03 * len(p["text"]))
def prosody_stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
                  ) -> dict[str, Any]:
    from pipelines.prosody import adjust, auto_emotion

    emotion = params.get("emotion") or "auto"
    if emotion == "auto":
        emotion = auto_emotion(params["text"])
    voice = _load_audio(ctx, outputs["voice"]["voice_key"])
    adjusted, report = adjust(voice, {"emotion": emotion}, progress=ctx.progress)
    key = ctx.storage.put(ctx.new_key("prosody", "wav"), encode_wav(adjusted))
    return {"prosody_key": key, "emotion": emotion, "changes": report.changes,
            "duration": round(adjusted.duration, 3),
            "time_scale": (adjusted.duration / voice.duration) if voice.duration else 1.0,
            "backend": "rubberband+praat"}


@ticking(lambda p: 2.0)
def bgm_stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
              ) -> dict[str, Any]:
    from pipelines.bgm import MixOptions, mix_to_file

    voice = _load_audio(ctx, outputs["prosody"]["prosody_key"])
    options = MixOptions.from_mapping({"bgm_volume": params.get("bgm_volume", 0.25),
                                       "output_format": "m4a"})
    data, report, track = mix_to_file(voice, params["bgm"], options, store=ctx.storage,
                                      progress=ctx.progress)
    key = ctx.storage.put(ctx.new_key("bgm/mixes", "m4a"), data)
    return {"mix_key": key, "track": track.id if track else None, "lead_in": options.lead_in,
            "tail": options.tail, "mixing": _jsonable(report.details),
            "backend": "pyloudnorm"}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: getattr(o, "tolist", str)(o)))


# A message without music still opens and closes on a face at rest: the voice used to start
# on the first frame (the poster frame caught the mouth mid-word) and stop on the last.
QUIET_LEAD_IN = 0.4  # seconds of silence before the voice when there is no music
QUIET_TAIL = 0.4  # and after it


@ticking(lambda p: 2.0 + 0.1 * len(p["text"]) * _pixels(p))
def video_stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
                ) -> dict[str, Any]:
    from PIL import Image

    from pipelines.video import render_talking_head

    voice_out, prosody_out = outputs["voice"], outputs["prosody"]
    music = outputs.get("bgm")
    voice = _load_audio(ctx, prosody_out["prosody_key"])
    scale = float(prosody_out.get("time_scale", 1.0))
    lead = float(music["lead_in"]) if music else QUIET_LEAD_IN
    soundtrack = _load_audio(ctx, music["mix_key"]) if music else None
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
        from pipelines.loudness import normalize

        track, _ = normalize(track)
    speech = Speech(track,
                    sentences=_as_timings(voice_out.get("sentences", []), scale, lead),
                    phonemes=_as_timings(voice_out.get("phonemes", []), scale, lead))
    portrait = Image.open(io.BytesIO(ctx.storage.get(outputs["image"]["portrait_key"])))
    portrait.load()
    with tempfile.TemporaryDirectory(prefix="studio-message-") as tmp:
        rendered = Path(tmp) / "talk.mp4"
        render_progress = sub_progress(ctx.progress, 0.0, 0.95)
        _, report = render_talking_head(
            ctx.chain("talking_head"), portrait, speech, size=params["size"], output=rendered,
            progress=render_progress, seed=int(params.get("seed", 0)))
        final = rendered
        if soundtrack is not None:
            final = Path(tmp) / "final.mp4"
            mix_path = Path(tmp) / "mix.m4a"
            mix_path.write_bytes(ctx.storage.get(music["mix_key"]))
            _mux(rendered, mix_path, final)
        ctx.progress(0.98, "store")
        key = ctx.new_key("videos/final", "mp4")
        ctx.storage.put(key, final.read_bytes())
    return {"video_key": key, "duration": round(total, 3), "size": params["size"],
            "backend": report.get("backend"), "fallback_used": report.get("fallback_used"),
            "fallback_method": report.get("fallback_method"),
            "speech_sentences": _timings(speech.sentences)}


def _mux(video: Path, audio: Path, output: Path) -> None:
    """Swap the render's voice-only track for the mixed soundtrack (video copied as is)."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-i", str(audio),
           "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "copy",
           "-movflags", "+faststart", str(output)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)


@ticking(lambda p: 1.0 + 0.1 * len(p["text"]) * _pixels(p))
def subtitles_stage(ctx: JobContext, params: dict[str, Any], outputs: dict[str, Any]
                    ) -> dict[str, Any]:
    from pipelines import subtitles as subs

    video_out = outputs["video"]
    audio = _load_audio(ctx, outputs["prosody"]["prosody_key"])
    speech = Speech(audio, sentences=_as_timings(video_out.get("speech_sentences", [])))
    cues = subs.cues_for(params["text"], speech)
    srt_key = ctx.storage.put(ctx.new_key("videos/final", "srt"),
                              subs.to_srt(cues).encode("utf-8"))
    vtt_key = ctx.storage.put(ctx.new_key("videos/final", "vtt"),
                              subs.to_vtt(cues).encode("utf-8"))
    with tempfile.TemporaryDirectory(prefix="studio-subs-") as tmp:
        source, target = Path(tmp) / "in.mp4", Path(tmp) / "out.mp4"
        source.write_bytes(ctx.storage.get(video_out["video_key"]))
        ctx.progress(0.2, "burn-in")
        subs.burn_in(source, target, cues)
        key = ctx.storage.put(ctx.new_key("videos/final", "mp4"), target.read_bytes())
    return {"video_key": key, "srt_key": srt_key, "vtt_key": vtt_key, "cues": len(cues),
            "backend": "ffmpeg+noto-cjk"}


def finish(params: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    video = outputs.get("subtitles") or outputs["video"]
    result: dict[str, Any] = {
        "video_key": video["video_key"],
        "portrait_key": outputs["image"]["portrait_key"],
        "audio_key": (outputs.get("bgm") or outputs["prosody"]).get("mix_key")
        or outputs["prosody"]["prosody_key"],
        "duration": outputs["video"]["duration"],
        "size": params["size"],
        "emotion": outputs["prosody"]["emotion"],
        "text": params["text"],
        "engines": {
            "image": outputs["image"].get("engines"),
            "voice": outputs["voice"].get("engines"),
            "video": outputs["video"].get("backend"),
        },
        "fallback_used": any(bool(o.get("fallback_used")) for o in outputs.values()),
    }
    if "subtitles" in outputs:
        result["srt_key"] = outputs["subtitles"]["srt_key"]
        result["vtt_key"] = outputs["subtitles"]["vtt_key"]
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
          when=lambda p: str(p.get("bgm", "")).lower() not in NO_MUSIC),
    Stage("video", video_stage, after=("image", "prosody", "bgm"), weight=11.0, retries=1,
          timeout=1200),
    Stage("subtitles", subtitles_stage, after=("video",), weight=6.0, retries=1, timeout=300,
          when=lambda p: bool(p.get("subtitles"))),
]

staged_job(KIND, STAGES, finish)
