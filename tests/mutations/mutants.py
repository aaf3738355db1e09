"""The planted defects of the mutation check (``python -m tests.mutations``, run by
``.ci/run``): each is a defect a person would notice, written as one text replacement in one
file of a scratch copy of the studio, and the fast-lane tests (``-m "not slow"``) that must
fail on it.

To add one, add one ``Mutant`` to ``MUTANTS``: ``old`` must occur exactly once in ``file``
(``tests/mutations/test_mutants.py`` checks that, and that the mutated file still compiles),
and ``tests`` names the fast tests to run on it (files, or ``file::test`` ids; a few
seconds each: the whole check should stay within a few minutes on 2 cores). The shape of
one entry (an illustration: the file and texts here are made up)::

    Mutant(
        name="speech_backwards",
        description="Japanese speech comes out played backwards",
        file="pipelines/voice/speech.py",
        old="    return Speech(audio, ",
        new="    return Speech(Audio(audio.samples[::-1].copy(), audio.sample_rate), ",
        tests=("tests/app/api/test_voice.py",),
    ),
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    name: str  # short, unique: what the report and ``python -m tests.mutations NAME`` use
    description: str  # the defect as a person would notice it
    file: str  # relative to the repository root
    old: str  # exact text, found exactly once in ``file``
    new: str  # what replaces it
    tests: tuple[str, ...]  # the fast-lane selection that must fail


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        name="rest_own_rate_limiter",
        description="REST counts requests with a rate limiter of its own, so a client gets "
                    "the limit once through REST and once more through the Gradio API",
        file="app/main.py",
        old="                       limiter=services.rate_limiter)",
        new="                       limiter=__import__('app.api.limits').api.limits"
            ".RateLimiter(settings.rate_limit_per_minute))",
        tests=("tests/app/test_main_one_door.py", "tests/app/api/test_limits.py"),
    ),
    Mutant(
        name="traversal_answered_200",
        description="DELETE /api/voice/profiles/<traversal> answers 200 (deleted: false) "
                    "instead of refusing the id",
        file="app/api/voice.py",
        old="""        profile_store(request).delete(profile_id)
        return ok({"deleted": True, "profile_id": profile_id, "id": profile_id})""",
        new="""        from models.errors import NotFound

        store = profile_store(request)
        try:
            store._check_id(profile_id)
        except NotFound:  # not an id at all: nothing to delete
            return ok({"deleted": False, "profile_id": profile_id, "id": profile_id})
        store.delete(profile_id)
        return ok({"deleted": True, "profile_id": profile_id, "id": profile_id})""",
        tests=("tests/security/test_hostile_inputs.py", "tests/security/test_ownership.py"),
    ),
    Mutant(
        name="neural_engine_silent_fallback",
        description="neural weights that are there fail to load (the wrong folder), and "
                    "every job silently falls back to the bundled engines",
        file="models/hf.py",
        old="            model = self._load_from(folder).to(device).eval()",
        new="            model = self._load_from(folder.rsplit('/', 1)[0]).to(device).eval()",
        tests=("tests/models/test_registry_neural.py", "tests/app/api/test_image.py"),
    ),
    Mutant(
        name="recovered_message_frozen",
        description="a message whose render lost its worker is finished as a still picture "
                    "under the voice (a quick resume), not rendered again",
        file="pipelines/message/chain.py",
        old="""        _, report = render_talking_head(
            ctx.chain("talking_head"), portrait, speech, output=rendered,
            render=RenderOptions(size=request.size, seed=request.seed), progress=render_progress)
""",
        new="""        stage = ctx.jobs.store.load_stages(ctx.job_id).get("video", {})
        if stage.get("lost_workers"):  # resumed after a lost worker: a quick still
            still, voice_wav = Path(tmp) / "still.png", Path(tmp) / "voice.wav"
            portrait.convert("RGB").save(still)
            voice_wav.write_bytes(encode_wav(track))
            subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-i", str(still),
                            "-i", str(voice_wav), "-shortest", "-r", "25", "-c:v", "libx264",
                            "-pix_fmt", "yuv420p", "-c:a", "aac", str(rendered)],
                           check=True, capture_output=True, timeout=300)
            report = {"backend": "builtin"}
        else:
            _, report = render_talking_head(
                ctx.chain("talking_head"), portrait, speech, output=rendered,
                render=RenderOptions(size=request.size, seed=request.seed),
                progress=render_progress)
""",
        tests=("tests/faults/test_recovered_message.py",),
    ),
    Mutant(
        name="mouth_never_moving",
        description="the built-in face animator renders every frame with the mouth at rest: "
                    "the face speaks without moving its lips",
        file="models/talking_head/mouth.py",
        old="        weights = np.array([getattr(c, s) for s in SHAPES], np.float32)\n"
            "        roi = self.mouth_roi\n",
        new="        weights = np.zeros(len(SHAPES), np.float32)\n"
            "        roi = self.mouth_roi\n",
        tests=("tests/faults/test_recovered_message.py", "tests/app/ui/test_video.py"),
    ),
    Mutant(
        name="japanese_speech_backwards",
        description="Japanese speech comes out played backwards (same length, same voice)",
        file="pipelines/voice/speech.py",
        old="    speech: Speech = result.value\n",
        new="    speech: Speech = result.value\n"
            "    if language == 'ja':\n"
            "        speech = replace(speech, audio=Audio(speech.audio.samples[::-1].copy(),"
            " speech.audio.sample_rate))\n",
        tests=("tests/models/voice/test_words_japanese.py",),
    ),
    Mutant(
        name="profile_voice_garbled",
        description="a profile's voice is chosen on nearness and naturalness alone: the "
                    "nearest natural candidate serves even when its words are gone",
        file="pipelines/voice/serving.py",
        old="        if (candidate.words or 0.0) < KEPT:\n",
        new="        if False:\n",
        tests=("tests/pipelines/voice/test_serving.py",),
    ),
)
