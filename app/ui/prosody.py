"""The Prosody tab: a recording (uploaded, recorded, or the Voice tab's latest output),
emotion preset buttons that set the sliders, before/after players, and a plot of the
waveform and pitch contour before and after. Gradio API name: ``/adjust_prosody``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from app.storage import Storage
from app.ui.owners import UiState, latest_key, remember
from app.ui.text import label, plain, register, request_language, studio_error, t, ui_error, word
from app.ui.work import Recorder
from app.usecases import prosody
from models.errors import StudioError

register(
    en={
        "prosody.intro": "Shape the voice: pitch, pace, energy, intonation and pauses. "
                         "Pitch and tempo use Rubber Band with formants preserved; intonation "
                         "uses Praat's PSOLA.",
        "prosody.input": "Voice recording", "prosody.latest": "Use the Voice tab's latest output",
        "prosody.presets": "Emotion presets", "prosody.text": "Message text (for the automatic mood)",
        "prosody.pitch": "Pitch (semitones)", "prosody.stretch": "Speed (1.1 = 10% faster)",
        "prosody.energy": "Energy (gain, peak-safe)", "prosody.intonation": "Intonation",
        "prosody.pauses": "Pauses between phrases", "prosody.apply": "Apply",
        "prosody.after": "After", "prosody.plot": "Waveform and pitch, before / after",
        "prosody.changes": "Changes", "prosody.table": "Preset table",
        "prosody.data": "Details (JSON, as the API returns them)",
        "prosody.said_pitch": "pitch {value} semitones", "prosody.said_speed": "speed ×{value}",
        "prosody.said_volume": "volume {value} dB", "prosody.said_intonation":
        "intonation {value} % of its range", "prosody.said_pauses": "pauses {value} %",
        "prosody.said_length": "length {before} s → {after} s",
        "prosody.no_voice": "No Voice tab output yet.",
        "prosody.emotion": "Emotion", "prosody.need_audio": "Upload or record a voice first.",
        "prosody.col_pitch": "pitch (st)", "prosody.col_speed": "speed",
        "prosody.col_energy": "energy", "prosody.col_pauses": "pauses",
    },
    ja={
        "prosody.intro": "声の高さ・速さ・強さ・抑揚・間を調整します。高さと速さは Rubber Band"
                         "（フォルマント保持）、抑揚は Praat の PSOLA を使います。",
        "prosody.input": "音声", "prosody.latest": "音声タブの最新の出力を使う",
        "prosody.presets": "感情プリセット", "prosody.text": "メッセージ本文（自動判定用）",
        "prosody.pitch": "ピッチ（半音）", "prosody.stretch": "速さ（1.1 = 10% 速く）",
        "prosody.energy": "音量（ピーク保護付き）", "prosody.intonation": "抑揚",
        "prosody.pauses": "文の間の長さ", "prosody.apply": "適用",
        "prosody.after": "調整後", "prosody.plot": "波形とピッチ（前 / 後）",
        "prosody.changes": "変更点", "prosody.table": "プリセット表",
        "prosody.data": "詳細（JSON・API が返す形）",
        "prosody.said_pitch": "ピッチ {value} 半音", "prosody.said_speed": "話速 ×{value}",
        "prosody.said_volume": "音量 {value} dB", "prosody.said_intonation":
        "抑揚 {value} %", "prosody.said_pauses": "間 {value} %",
        "prosody.said_length": "長さ {before} 秒 → {after} 秒",
        "prosody.no_voice": "音声タブの出力がまだありません。",
        "prosody.emotion": "感情", "prosody.need_audio": "先に音声をアップロードまたは録音してください。",
        "prosody.col_pitch": "ピッチ（半音）", "prosody.col_speed": "速さ",
        "prosody.col_energy": "音量", "prosody.col_pauses": "間",
    },
)

def _error(exc: StudioError, request: Any = None) -> gr.Error:
    return studio_error(exc, request_language(request))


def latest_audio(storage: Storage, state: UiState, prefix: str | tuple[str, ...],
                 request: Any = None) -> str | None:
    """Local path of the newest stored audio under ``prefix`` (e.g. another tab's output)
    that this user may take (their own when the UI login is on; see ``app.ui.owners``)."""
    prefixes = (prefix,) if isinstance(prefix, str) else prefix
    key = latest_key(storage, state, request, prefixes, ("wav", "mp3", "m4a", "flac", "ogg"))
    return str(storage.local_path(key)) if key else None


def preset_markdown(lang: str = "en") -> str:
    """The preset table in ``lang`` (built per page: Markdown tables are not translated)."""
    names = ["prosody.emotion", "prosody.col_pitch", "prosody.col_speed", "prosody.col_energy",
             "prosody.intonation", "prosody.col_pauses"]
    head = ("| " + " | ".join(plain(n, lang) for n in names) + " |\n"
            + "|---" * len(names) + "|\n")
    rows = "".join(f"| {word('mood.', r['emotion'], lang)} | {r['pitch_shift']:+.2f} | "
                   f"x{r['time_stretch']:.2f} | "
                   f"x{r['energy_boost']:.2f} ({r['energy_db']:+.1f} dB) | {r['intonation']:.1f} | "
                   f"{r['pauses']:.1f} |\n" for r in prosody.presets()["presets"])
    return head + rows


def run_adjust(storage: Storage, state: UiState, record: Recorder, audio_path: str | None, emotion: str, text: str,
               pitch_shift: float, time_stretch: float, energy_boost: float,
               intonation: float, pauses: float, request: Any = None) -> tuple[str, str, str]:
    """(after audio path, plot path, changes as JSON text)."""
    from app.ui.audio_plots import prosody_plot

    lang = request_language(request)
    if not audio_path:
        raise ui_error(plain("prosody.need_audio", lang), lang)
    try:
        with record("prosody.adjust", {"emotion": emotion}, request):
            params, _ = prosody.settings({
                "emotion": emotion or None, "text": text or None, "pitch_shift": pitch_shift,
                "time_stretch": time_stretch, "energy_boost": energy_boost,
                "intonation": intonation, "pauses": pauses})
            done = prosody.adjust_recording(storage, Path(audio_path).read_bytes(),
                                            Path(audio_path).name, params)
    except StudioError as exc:
        raise _error(exc, request) from None
    key, report = done.key, done.report
    remember(state, request, key)
    plot = prosody_plot(done.before, done.after, *prosody.pitch_tracks(done), lang)
    summary: dict[str, Any] = {"emotion": report.emotion, "changes_applied": report.changes,
                               "applied": report.applied,
                               "original_duration": report.original_duration,
                               "duration": report.duration, "notes": report.notes,
                               "engine": "Rubber Band (pedalboard) + Praat PSOLA",
                               "output_key": key}
    return str(storage.local_path(key)), plot, json.dumps(summary, ensure_ascii=False,
                                                                    indent=1)


def changes_said(data: str, lang: str = "en") -> str:
    """What the adjustment did, in the page's language (the JSON beside it is the API's)."""
    try:
        summary = json.loads(data or "{}")
    except ValueError:
        return ""
    applied = summary.get("applied") or {}
    if not applied:
        return ""
    parts = [f"**{word('mood.', str(summary.get('emotion')), lang)}**"]
    pitch, speed = applied.get("pitch_shift", 0.0), applied.get("time_stretch", 1.0)
    energy = applied.get("energy_boost", 1.0)
    if abs(pitch) > 1e-6:
        parts.append(plain("prosody.said_pitch", lang).format(value=f"{pitch:+.1f}"))
    if abs(speed - 1) > 1e-6:
        parts.append(plain("prosody.said_speed", lang).format(value=f"{speed:.2f}"))
    if abs(energy - 1) > 1e-6:
        parts.append(plain("prosody.said_volume", lang).format(
            value=f"{prosody.gain_db(energy):+.1f}"))
    for name in ("intonation", "pauses"):
        value = applied.get(name, 1.0)
        if abs(value - 1) > 1e-6:
            parts.append(plain(f"prosody.said_{name}", lang).format(value=round(value * 100)))
    parts.append(plain("prosody.said_length", lang).format(
        before=f"{summary.get('original_duration', 0):.1f}",
        after=f"{summary.get('duration', 0):.1f}"))
    return " · ".join(parts)


def build(storage: Storage, state: UiState, record: Recorder) -> None:
    """The tab over its parts: the store it reads and writes, who is asking, its records."""
    gr.Markdown(t("prosody.intro"))
    with gr.Row():
        with gr.Column():
            audio_in = gr.Audio(label=t("prosody.input"), type="filepath",
                                sources=["upload", "microphone"], elem_id="prosody-input")
            latest = gr.Button(t("prosody.latest"), size="sm", elem_id="prosody-latest")
            text = gr.Textbox(label=t("prosody.text"), lines=2)
            gr.Markdown(t("prosody.presets"))
            with gr.Row():
                buttons = {name: gr.Button(label("mood.", name), size="sm", min_width=80,
                                           elem_id=f"preset-{name}")
                           for name in prosody.EMOTIONS}
            emotion = gr.Dropdown([(label("mood.", n), n) for n in prosody.EMOTIONS],
                                  value="neutral", label=t("prosody.emotion"),
                                  elem_id="prosody-emotion")
            sliders = [
                gr.Slider(-12, 12, 0, step=0.1, label=t("prosody.pitch")),
                gr.Slider(0.5, 2.0, 1.0, step=0.01, label=t("prosody.stretch")),
                gr.Slider(0.5, 2.0, 1.0, step=0.01, label=t("prosody.energy")),
                gr.Slider(0.0, 2.0, 1.0, step=0.05, label=t("prosody.intonation")),
                gr.Slider(0.0, 2.0, 1.0, step=0.05, label=t("prosody.pauses")),
            ]
            apply = gr.Button(t("prosody.apply"), variant="primary", elem_id="prosody-apply")
        with gr.Column():
            audio_out = gr.Audio(label=t("prosody.after"), type="filepath", interactive=False,
                                 elem_id="prosody-after")
            plot = gr.Image(label=t("prosody.plot"), type="filepath", interactive=False,
                            elem_id="prosody-plot")
            said = gr.Markdown(elem_id="prosody-said", elem_classes=["studio-note"])
            with gr.Accordion(t("prosody.data"), open=False):
                changes = gr.Code(label=t("prosody.changes"), language="json",
                                  elem_classes=["studio-data"])
    with gr.Accordion(t("prosody.table"), open=False):
        table = gr.Markdown(preset_markdown())

    def localized_table(request: gr.Request) -> str:
        return preset_markdown(request_language(request))

    def use_latest(request: gr.Request) -> str | None:
        path = latest_audio(storage, state, ("voices/", "temp/voices/"), request)
        if path is None:
            lang = request_language(request)
            gr.Warning(plain("prosody.no_voice", lang), title=plain("warning.title", lang))
        return path

    latest.click(use_latest, outputs=audio_in, api_visibility="private")
    for name, button in buttons.items():
        button.click(lambda n=name: n, outputs=emotion, api_visibility="private")
    emotion.change(lambda name, txt: prosody.preset_values(name, txt), inputs=[emotion, text],
                   outputs=sliders, api_visibility="private")

    def adjust_prosody(audio_path: str | None, emotion_name: str, message: str,
                       pitch_shift: float, time_stretch: float, energy_boost: float,
                       intonation: float, pauses: float,
                       request: gr.Request | None = None) -> tuple[str, str, str]:
        """Adjust a recording's prosody; slider values override the emotion preset."""
        return run_adjust(storage, state, record, audio_path, emotion_name, message, pitch_shift,
                          time_stretch, energy_boost, intonation, pauses, request)

    gr.on(None, localized_table, None, table, api_visibility="private", show_progress="hidden")
    def said_text(data: str, request: gr.Request | None = None) -> str:
        return changes_said(data, request_language(request))

    apply.click(adjust_prosody, inputs=[audio_in, emotion, text, *sliders],
                outputs=[audio_out, plot, changes], api_name="adjust_prosody").then(
        said_text, changes, said, api_visibility="private", show_progress="hidden")
