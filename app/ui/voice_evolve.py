"""The Voice tab's "evolved voice" panel: start (or resume) the search for a profile's
evolved built-in voice, follow its progress and best score, cancel it, and hear the
quick match and the evolved voice one after the other.

Its events are the page's own (not Gradio API endpoints): scripts use REST,
``POST /api/voice/profiles/{id}/evolve`` and ``GET /api/voice/status/{task_id}``. What it
makes is named for what it is: a built-in Kokoro voice moved by a search, not a cloned
recording.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from gradio.context import get_blocks_context

from app.ui.owners import ui_owner, ui_visibility
from app.ui.text import plain, register, request_language, studio_error, t, word
from app.ui.voice_profiles import VoiceDesk
from app.usecases import voices
from app.usecases.voice_evolve import before_search, latest_search
from models.errors import NotFound, StudioError
from pipelines.voice.profiles import ProfileStore

register(
    en={
        "evolve.title": "Evolved voice (Kokoro style search)",
        "evolve.intro": "An evolved built-in voice: a search moves one of Kokoro's built-in "
                        "voices until its speech scores close to the profile's recordings. "
                        "It is not a cloned recording. It runs in the background (about 10 "
                        "minutes) and replaces the quick voice match only where it scores "
                        "better on a recording the search never heard.",
        "evolve.profile": "Profile", "evolve.start": "Evolve (or resume)",
        "evolve.cancel": "Cancel", "evolve.refresh": "Refresh status",
        "evolve.status": "Search status", "evolve.compare": "Before / after",
        "evolve.before": "Before: quick voice match", "evolve.after": "After: evolved voice",
        "evolve.none": "No search yet for this profile.",
        "evolve.choose": "Choose a profile first.",
        "evolve.state": "State", "evolve.progress": "progress",
        "evolve.iteration": "iteration", "evolve.best": "best held-out score",
        "evolve.quick": "quick match", "evolve.serves": "serves",
        "evolve.evolved": "evolved voice", "evolve.matched": "quick voice match",
        "evolve.cancelled": "Cancel requested.",
    },
    ja={
        "evolve.title": "進化させた声（Kokoro スタイル探索）",
        "evolve.intro": "内蔵音声を進化させた声です。Kokoro の内蔵音声を少しずつ動かし、"
                        "プロファイルの録音に近く聞こえるものを探します。録音の複製ではありません。"
                        "バックグラウンドで約 10 分かかり、探索に使っていない録音でより近いと"
                        "判定された場合だけ、簡易の声合わせに代わって使われます。",
        "evolve.profile": "プロファイル", "evolve.start": "進化を開始（再開）",
        "evolve.cancel": "中止", "evolve.refresh": "状態を更新",
        "evolve.status": "探索の状態", "evolve.compare": "比較（前・後）",
        "evolve.before": "前：簡易の声合わせ", "evolve.after": "後：進化させた声",
        "evolve.none": "このプロファイルはまだ探索していません。",
        "evolve.choose": "先にプロファイルを選んでください。",
        "evolve.state": "状態", "evolve.progress": "進捗",
        "evolve.iteration": "反復", "evolve.best": "検証用録音での最高スコア",
        "evolve.quick": "簡易の声合わせ", "evolve.serves": "使用中",
        "evolve.evolved": "進化させた声", "evolve.matched": "簡易の声合わせ",
        "evolve.cancelled": "中止を依頼しました。",
    },
)

SAMPLE = {"ja": "こんにちは。今日はお招きいただき、ありがとうございます。",
          "en": "Hello. Thank you so much for having me today."}


def _store(desk: VoiceDesk, request: Any) -> ProfileStore:
    return desk.voices.profiles(ui_visibility(desk.state, request))


def profile_choices(desk: VoiceDesk, request: Any = None) -> list[tuple[str, str]]:
    return [(p.name, p.id) for p in _store(desk, request).list()]


def latest_job(desk: VoiceDesk, profile_id: str) -> Any:
    """The newest search job for ``profile_id``, if any."""
    return latest_search(desk.jobs, profile_id)


def status_text(desk: VoiceDesk, profile_id: str | None, lang: str,
                request: Any = None) -> str:
    """The search's state, progress, iteration and scores, in the page's language."""
    return search_state(desk, profile_id, lang, request)[0]


def search_state(desk: VoiceDesk, profile_id: str | None, lang: str,
                 request: Any = None) -> tuple[str, bool]:
    """:func:`status_text` and whether a search is still going (one look at the jobs: the
    panel asks every few seconds while one runs)."""
    if not profile_id:
        return plain("evolve.choose", lang), False
    try:
        profile = _store(desk, request).get(profile_id)
    except NotFound:
        return plain("evolve.choose", lang), False
    job = latest_job(desk, profile_id)
    running = job is not None and not job.final
    record = profile.evolution or {}
    if job is None and not record:
        return plain("evolve.none", lang), running
    lines = [f"_{record.get('label_ja' if lang == 'ja' else 'label') or plain('evolve.title', lang)}_"]
    if job is not None:
        lines.append(f"**{plain('evolve.state', lang)}:** {word('status.', job.status, lang)}"
                     f" · {plain('evolve.progress', lang)} {job.progress:.0f}%")
    if record:
        best = (record.get("best") or {}).get("held_out")
        quick = (record.get("quick") or {}).get("held_out")
        lines.append(f"**{plain('evolve.iteration', lang)}:** {record.get('iteration')} · "
                     f"**{plain('evolve.best', lang)}:** {best} "
                     f"({plain('evolve.quick', lang)} {quick}) · {record.get('seconds')} s")
        serves = record.get("serves") or {}
        if serves:
            said = ", ".join(f"{language}: {plain('evolve.' + source, lang)}"
                             for language, source in sorted(serves.items()))
            lines.append(f"**{plain('evolve.serves', lang)}:** {said}")
    return "\n\n".join(lines), running


def _player(speech: Any) -> tuple[int, np.ndarray]:
    pcm = (np.clip(speech.audio.samples, -1, 1) * 32767).astype(np.int16)
    return speech.audio.sample_rate, pcm


def build(desk: VoiceDesk) -> None:
    """The panel over the Voice tab's parts."""
    with gr.Accordion(t("evolve.title"), open=False):
        gr.Markdown(t("evolve.intro"))
        with gr.Row():
            profile = gr.Dropdown(label=t("evolve.profile"), choices=profile_choices(desk),
                                  allow_custom_value=True, elem_id="evolve-profile")
            language = gr.Radio(["ja", "en"], value="ja", label=t("voice.language"))
        with gr.Row():
            start = gr.Button(t("evolve.start"), variant="primary", elem_id="evolve-start")
            cancel = gr.Button(t("evolve.cancel"), variant="stop", size="sm")
            refresh = gr.Button(t("evolve.refresh"), size="sm")
        status = gr.Markdown(elem_id="evolve-status", elem_classes=["studio-note"])
        compare = gr.Button(t("evolve.compare"))
        with gr.Row():
            before = gr.Audio(label=t("evolve.before"), type="numpy", interactive=False)
            after = gr.Audio(label=t("evolve.after"), type="numpy", interactive=False)
        timer = gr.Timer(5.0, active=False)

    def start_search(profile_id: str | None, request: gr.Request | None = None) -> tuple[str, Any]:
        lang = request_language(request)
        if not profile_id:
            return plain("evolve.choose", lang), gr.update(active=False)
        try:
            _store(desk, request).get(profile_id)
            desk.voices.submit_evolution(profile_id, owner=ui_owner(desk.state, request),
                                         budget_s=None)
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        return status_text(desk, profile_id, lang, request), gr.update(active=True)

    def show_status(profile_id: str | None, request: gr.Request | None = None) -> tuple[str, Any]:
        text, running = search_state(desk, profile_id, request_language(request), request)
        return text, gr.update(active=running)

    def cancel_search(profile_id: str | None, request: gr.Request | None = None) -> str:
        lang = request_language(request)
        try:
            job = latest_job(desk, _store(desk, request).get(profile_id).id) \
                if profile_id else None
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        if job is None:
            return status_text(desk, profile_id, lang, request)
        desk.queue.cancel(job.id)
        return plain("evolve.cancelled", lang) + "\n\n" + status_text(
            desk, profile_id, lang, request)

    def before_after(profile_id: str | None, language: str, request: gr.Request | None = None
                     ) -> tuple[Any, Any]:
        lang = request_language(request)
        if not profile_id:
            raise gr.Error(plain("evolve.choose", lang))
        store = _store(desk, request)
        try:
            choice = voices.profile_choice(profile_id)
            was, _ = desk.voices.speak(SAMPLE[language], choice, language=language,
                                       profiles=before_search(store))
            now, _ = desk.voices.speak(SAMPLE[language], choice, language=language,
                                       profiles=store)
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        return _player(was), _player(now)

    def refreshed(profile_id: str | None, request: gr.Request | None = None
                  ) -> tuple[Any, str, Any]:
        text, timer_state = show_status(profile_id, request)
        return gr.update(choices=profile_choices(desk, request)), text, timer_state

    start.click(start_search, profile, [status, timer], api_visibility="private")
    refresh.click(refreshed, profile, [profile, status, timer], api_visibility="private")
    profile.change(show_status, profile, [status, timer], api_visibility="private")
    timer.tick(show_status, profile, [status, timer], api_visibility="private")

    def opened(request: gr.Request | None = None) -> tuple[Any, Any]:
        """A page (re)load lists this user's profiles, in the page's language."""
        lang = request_language(request)
        return gr.update(choices=profile_choices(desk, request)), lang

    blocks = get_blocks_context()
    if blocks is not None:
        blocks.root_block.load(opened, None, [profile, language], api_visibility="private")
    cancel.click(cancel_search, profile, status, api_visibility="private")
    compare.click(before_after, [profile, language], [before, after],
                  api_visibility="private", concurrency_limit=1)
