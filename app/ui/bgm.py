"""The BGM tab: the track list with a preview player, music upload, mixing sliders, a plot of
the ducking envelope over the voice, the mixed player and a download.
Gradio API names: ``/list_tracks``, ``/mix_bgm``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from app.storage import Storage
from app.ui.downloads import named
from app.ui.owners import UiState, remember, ui_owner, ui_visibility
from app.ui.prosody import latest_audio
from app.ui.text import label, plain, register, request_language, studio_error, t, ui_error, word
from app.ui.text import table as headed
from app.ui.work import Recorder
from app.usecases import music
from models.errors import StudioError

register(
    en={
        "bgm.intro": "Lay music under the voice: looped to any length, ducked under speech, "
                     "mixed to -16 LUFS with true peaks under -1 dBTP.",
        "bgm.tracks": "Tracks", "bgm.track": "Track", "bgm.preview": "Preview",
        "bgm.upload": "Upload your own music (mp3, wav, ogg, m4a, flac; up to 10 MB)",
        "bgm.upload_title": "Title", "bgm.upload_mood": "Mood", "bgm.upload_button": "Add track",
        "bgm.voice": "Voice", "bgm.latest": "Use the Prosody tab's latest output",
        "bgm.volume": "Music volume (relative to the voice)", "bgm.fade_in": "Fade in (s)",
        "bgm.fade_out": "Fade out (s)", "bgm.lead_in": "Music before the voice (s)",
        "bgm.tail": "Music after the voice (s)", "bgm.ducking": "Duck the music under speech",
        "bgm.duck_db": "Ducking depth (dB)", "bgm.attack": "Attack (ms)",
        "bgm.release": "Release (ms)", "bgm.format": "Output format", "bgm.mix": "Mix",
        "bgm.mixed": "Mixed", "bgm.download": "Download", "bgm.envelope": "Ducking envelope",
        "bgm.details": "Mixing details (JSON, as the API returns them)",
        "bgm.said": "**{title}** under the voice · {length} s, the voice from {start} s",
        "bgm.said_ducked": "the music drops {depth} dB while you speak",
        "bgm.said_flat": "the music stays at one level",
        "bgm.said_loudness": "loudness {lufs}, peaks under {ceiling}",
        "bgm.need_voice": "Give a voice first.", "bgm.need_file": "Choose a music file.",
        "col.title": "title", "col.mood": "mood", "col.duration": "duration (s)",
        "col.licence": "licence",
    },
    ja={
        "bgm.intro": "声の下に音楽を敷きます。長さに合わせてループし、話している間は音楽を下げ、"
                     "-16 LUFS・トゥルーピーク -1 dBTP 以下に整えます。",
        "bgm.tracks": "トラック一覧", "bgm.track": "トラック", "bgm.preview": "試聴",
        "bgm.upload": "自分の音楽をアップロード（mp3・wav・ogg・m4a・flac、10 MB まで）",
        "bgm.upload_title": "タイトル", "bgm.upload_mood": "ムード", "bgm.upload_button": "追加",
        "bgm.voice": "音声", "bgm.latest": "抑揚タブの最新の出力を使う",
        "bgm.volume": "音楽の音量（声に対して）", "bgm.fade_in": "フェードイン（秒）",
        "bgm.fade_out": "フェードアウト（秒）", "bgm.lead_in": "声の前の音楽（秒）",
        "bgm.tail": "声の後の音楽（秒）", "bgm.ducking": "話している間は音楽を下げる",
        "bgm.duck_db": "下げる量（dB）", "bgm.attack": "アタック（ms）",
        "bgm.release": "リリース（ms）", "bgm.format": "出力形式", "bgm.mix": "ミックス",
        "bgm.mixed": "ミックス結果", "bgm.download": "ダウンロード",
        "bgm.envelope": "ダッキングの様子", "bgm.details": "ミックスの詳細（JSON・API が返す形）",
        "bgm.said": "**{title}** を声の下に · 長さ {length} 秒、声は {start} 秒から",
        "bgm.said_ducked": "話している間は音楽を {depth} dB 下げています",
        "bgm.said_flat": "音楽の音量は一定です",
        "bgm.said_loudness": "ラウドネス {lufs}、ピークは {ceiling} 以下",
        "bgm.need_voice": "先に音声を指定してください。",
        "bgm.need_file": "音楽ファイルを選んでください。",
        "col.title": "タイトル", "col.mood": "ムード", "col.duration": "長さ（秒）",
        "col.licence": "ライセンス",
    },
)

# The built-in tracks' titles in both languages (an uploaded track keeps its own title).
register(
    en={"track.calm-acoustic": "Quiet Morning", "track.happy-acoustic": "Sunny Steps",
        "track.celebration-bright": "Party Lights", "track.celebration-festive": "Festival Day",
        "track.energetic-acoustic": "Full Speed", "track.tender-acoustic": "Kind Words"},
    ja={"track.calm-acoustic": "静かな朝", "track.happy-acoustic": "陽だまりの散歩",
        "track.celebration-bright": "パーティーの灯り", "track.celebration-festive": "お祭りの日",
        "track.energetic-acoustic": "全速力", "track.tender-acoustic": "やさしい言葉"},
)


def track_title(track_id: str, title: str, lang: str = "en") -> str:
    """A track's title in the page's language (a built-in one's; an upload's own)."""
    key = f"track.{track_id}"
    return plain(key, lang) if plain(key) != key else title


COLUMNS = ["col.title", "col.mood", "col.duration", "col.licence"]
"""The table people see (a row picks its track; ids stay in ``/list_tracks``)."""
HEADERS = ["id", "title", "mood", "duration", "licence"]
"""``/list_tracks``' rows."""


def _error(exc: StudioError, request: Any = None) -> gr.Error:
    return studio_error(exc, request_language(request))


def track_table(storage: Storage, state: UiState, request: Any = None) -> dict[str, Any]:
    """The track list with headers and moods in the page's language."""
    lang = request_language(request)
    rows = [[track_title(str(r[0]), str(r[1]), lang), word("mood.", str(r[2]), lang),
             r[3], str(r[4]).split(" (")[0]]  # "MIT": the notes behind it are in the API's
            for r in track_rows(storage, state, request)]
    return headed(COLUMNS, rows, lang)


def track_choices(rows: list[list[object]]) -> list[tuple[Any, str]]:
    """(title, id) for the track picker: a built-in title in the page's language."""
    return [(label("track.", str(r[0])) if plain(f"track.{r[0]}") != f"track.{r[0]}"
             else str(r[1]), str(r[0])) for r in rows]


def track_rows(storage: Storage, state: UiState, request: Any = None) -> list[list[object]]:
    """Built-in tracks and the uploads this user may see (``app.ui.owners``)."""
    return [[tr.id, tr.title, tr.mood, tr.duration, tr.licence]
            for tr in music.list_tracks(storage, ui_visibility(state, request))]


def track_path(storage: Storage, state: UiState, track_id: str, request: Any = None) -> str | None:
    """A local file for the preview player."""
    return music.track_file(storage, track_id, ui_visibility(state, request))


def run_mix(storage: Storage, state: UiState, record: Recorder, voice_path: str | None,
            track_id: str, volume: float, fade_in: float, fade_out: float, lead_in: float,
            tail: float, ducking: bool, duck_db: float, attack_ms: float, release_ms: float,
            fmt: str, request: Any = None) -> tuple[str, str, str, str]:
    """(mixed audio path, download path, envelope plot path, details JSON)."""
    from app.ui.audio_plots import ducking_plot

    lang = request_language(request)
    if not voice_path:
        raise ui_error(plain("bgm.need_voice", lang), lang)
    try:
        with record("bgm.mix", {"track": track_id}, request):
            options = music.mix_options({
                "bgm_volume": volume, "fade_in": fade_in, "fade_out": fade_out,
                "lead_in": lead_in, "tail": tail, "ducking": ducking, "duck_db": duck_db,
                "attack_ms": attack_ms, "release_ms": release_ms, "output_format": fmt})
            mixed = music.mix_voice(storage, Path(voice_path).read_bytes(),
                                    Path(voice_path).name, track_id or "happy", options,
                                    visible=ui_visibility(state, request))
    except StudioError as exc:
        raise _error(exc, request) from None
    key, report = mixed.key, mixed.report
    remember(state, request, key)
    path = named(str(storage.local_path(key)), "mix", lang)
    plot = ducking_plot(report.frame_times, report.music_gain_db, report.voice_level_db,
                        report.speech, lang)
    details = {**report.details, "output_key": key}
    return path, path, plot, json.dumps(details, ensure_ascii=False, indent=1)


def mix_said(data: str, lang: str = "en") -> str:
    """What the mix is, in the page's language (the JSON beside it is the API's)."""
    try:
        details = json.loads(data or "{}")
    except ValueError:
        return ""
    if not details:
        return ""
    track = details.get("track") or {}
    ducking = details.get("ducking") or {}
    loudness = details.get("loudness") or {}
    parts = [plain("bgm.said", lang).format(
        title=track_title(str(track.get("id")), str(track.get("title") or "—"), lang), length=f"{details.get('duration', 0):.1f}",
        start=f"{details.get('voice_offset', 0):.1f}")]
    parts.append(plain("bgm.said_ducked", lang).format(depth=f"{ducking.get('depth_db', 0):g}")
                 if ducking.get("enabled") else plain("bgm.said_flat", lang))
    if loudness.get("target_lufs") is not None:
        parts.append(plain("bgm.said_loudness", lang).format(
            lufs=f"{loudness['target_lufs']:g} LUFS",
            ceiling=f"{loudness.get('ceiling_dbtp', -1):g} dBTP"))
    return " · ".join(parts)


def build(storage: Storage, state: UiState, record: Recorder) -> None:
    """The tab over its parts: the store it reads and writes, who is asking, its records."""
    def initial_rows(request: gr.Request | None = None) -> dict[str, Any]:
        return track_table(storage, state, request)

    gr.Markdown(t("bgm.intro"))
    first = music.first_builtin()
    with gr.Row():
        with gr.Column():
            table = gr.Dataframe(headers=[plain(c) for c in COLUMNS], value=initial_rows,
                                 interactive=False, wrap=True, label=t("bgm.tracks"),
                                 elem_id="bgm-tracks")
            choice = gr.Dropdown(choices=track_choices(track_rows(storage, state)), value=first,
                                 label=t("bgm.track"), allow_custom_value=False)
            preview = gr.Audio(value=track_path(storage, state, first), label=t("bgm.preview"),
                               type="filepath", interactive=False)
            with gr.Accordion(t("bgm.upload"), open=False):
                upload = gr.File(file_types=[f".{e}" for e in music.UPLOAD_EXTENSIONS],
                                 type="filepath", label=t("bgm.upload"))
                title = gr.Textbox(label=t("bgm.upload_title"))
                mood = gr.Dropdown(choices=[(label("mood.", m), m) for m in music.UPLOAD_MOODS],
                                   value="custom",
                                   label=t("bgm.upload_mood"))
                add = gr.Button(t("bgm.upload_button"), size="sm")
        with gr.Column():
            voice = gr.Audio(label=t("bgm.voice"), type="filepath",
                             sources=["upload", "microphone"], elem_id="bgm-voice")
            latest = gr.Button(t("bgm.latest"), size="sm", elem_id="bgm-latest")
            volume = gr.Slider(0, 1, 0.3, step=0.01, label=t("bgm.volume"))
            with gr.Row():
                fade_in = gr.Slider(0, 10, 2.0, step=0.1, label=t("bgm.fade_in"))
                fade_out = gr.Slider(0, 10, 3.0, step=0.1, label=t("bgm.fade_out"))
            with gr.Row():
                lead_in = gr.Slider(0, 5, 1.0, step=0.1, label=t("bgm.lead_in"))
                tail = gr.Slider(0, 5, 2.0, step=0.1, label=t("bgm.tail"))
            ducking = gr.Checkbox(True, label=t("bgm.ducking"))
            with gr.Row():
                duck_db = gr.Slider(0, 30, 10, step=0.5, label=t("bgm.duck_db"))
                attack = gr.Slider(5, 1000, 80, step=5, label=t("bgm.attack"))
                release = gr.Slider(20, 3000, 400, step=10, label=t("bgm.release"))
            fmt = gr.Radio(list(music.OUTPUT_FORMATS), value="mp3", label=t("bgm.format"))
            mix_button = gr.Button(t("bgm.mix"), variant="primary", elem_id="bgm-mix")
    with gr.Row():
        mixed = gr.Audio(label=t("bgm.mixed"), type="filepath", interactive=False,
                         elem_id="bgm-mixed")
        download = gr.File(label=t("bgm.download"), interactive=False)
    envelope = gr.Image(label=t("bgm.envelope"), type="filepath", interactive=False,
                        elem_id="bgm-envelope")
    said = gr.Markdown(elem_id="bgm-said", elem_classes=["studio-note"])
    with gr.Accordion(t("bgm.details"), open=False):
        details = gr.Code(label=t("bgm.details"), language="json",
                          elem_classes=["studio-data"])

    def list_tracks(request: gr.Request | None = None) -> list[list[object]]:
        """Built-in and uploaded tracks: id, title, mood, duration, licence."""
        return track_rows(storage, state, request)

    def refresh_choices(request: gr.Request | None = None) -> gr.Dropdown:
        return gr.Dropdown(choices=track_choices(track_rows(storage, state, request)))

    def pick(evt: gr.SelectData, request: gr.Request | None = None) -> str:
        """A row of the table picks its track (the rows are track_rows' order)."""
        rows = track_rows(storage, state, request)
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return str(rows[index][0]) if isinstance(index, int) and index < len(rows) else first

    table.select(pick, outputs=choice, api_visibility="private")
    def preview_path(track_id: str, request: gr.Request | None = None) -> str | None:
        return track_path(storage, state, track_id, request)

    choice.change(preview_path, inputs=choice, outputs=preview, api_visibility="private")

    def add_track(path: str | None, name: str, mood_name: str,
                  request: gr.Request | None = None) -> tuple[dict[str, Any], gr.Dropdown]:
        lang = request_language(request)
        if not path:
            raise ui_error(plain("bgm.need_file", lang), lang)
        try:
            track = music.add_track(storage, Path(path).read_bytes(), Path(path).name,
                                    title=name or None, mood=mood_name,
                                    owner=ui_owner(state, request))
        except StudioError as exc:
            raise _error(exc, request) from None
        rows = track_rows(storage, state, request)
        return (track_table(storage, state, request),
                gr.Dropdown(choices=track_choices(rows), value=track.id))

    add.click(add_track, inputs=[upload, title, mood], outputs=[table, choice],
              api_visibility="private")
    def use_latest(request: gr.Request | None = None) -> str | None:
        return (latest_audio(storage, state, "prosody/", request)
                or latest_audio(storage, state, ("voices/", "temp/voices/"), request))

    latest.click(use_latest, outputs=voice, api_visibility="private")

    def mix_bgm(voice_path: str | None, track_id: str, bgm_volume: float, fade_in_s: float,
                fade_out_s: float, lead_in_s: float, tail_s: float, duck: bool,
                depth_db: float, attack_ms: float, release_ms: float,
                output_format: str, request: gr.Request | None = None) -> tuple[str, str, str, str]:
        """Mix the voice over a track (id or mood); returns audio, file, envelope, details."""
        return run_mix(storage, state, record, voice_path, track_id, bgm_volume, fade_in_s, fade_out_s,
                       lead_in_s, tail_s, duck, depth_db, attack_ms, release_ms, output_format,
                       request)

    def said_text(data: str, request: gr.Request | None = None) -> str:
        return mix_said(data, request_language(request))

    mix_button.click(mix_bgm, inputs=[voice, choice, volume, fade_in, fade_out, lead_in, tail,
                                      ducking, duck_db, attack, release, fmt],
                     outputs=[mixed, download, envelope, details], api_name="mix_bgm").then(
        said_text, details, said, api_visibility="private", show_progress="hidden")
    list_button = gr.Button(t("engines.refresh"), size="sm")
    list_button.click(initial_rows, outputs=table, api_visibility="private").then(
        refresh_choices, outputs=choice, api_visibility="private")
    api_list = gr.Button(visible=False)
    api_rows = gr.Dataframe(headers=HEADERS, visible=False)  # ids, for scripts
    api_list.click(list_tracks, outputs=api_rows, api_name="list_tracks")
