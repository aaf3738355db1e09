"""UI strings in English and Japanese; the browser's language picks (Gradio i18n).

Each tab module registers its own strings with :func:`register` and labels components with
:func:`t`; ``app.ui.build_i18n()`` hands the merged tables to Gradio at mount time.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.i18n import I18nData

_TABLES: dict[str, dict[str, str]] = {"en": {}, "ja": {}}


def register(en: dict[str, str], ja: dict[str, str]) -> None:
    missing = set(en) ^ set(ja)
    if missing:
        raise ValueError(f"UI strings without a translation: {sorted(missing)}")
    _TABLES["en"].update(en)
    _TABLES["ja"].update(ja)


def t(key: str) -> I18nData:
    if key not in _TABLES["en"]:
        raise KeyError(f"unregistered UI string {key!r}")
    return I18nData(key)


def plain(key: str, lang: str = "en") -> str:
    """The string itself, for text built in Python (Markdown, messages)."""
    return _TABLES.get(lang, _TABLES["en"]).get(key, _TABLES["en"].get(key, key))


def request_language(request: Any) -> str:
    """"ja" or "en" from the browser's Accept-Language (for text built in Python)."""
    from app.i18n import pick_language

    headers = getattr(request, "headers", None) if request is not None else None
    return pick_language(headers.get("accept-language") if headers else None)


def build_i18n() -> gr.I18n:
    return gr.I18n(**{lang: dict(table) for lang, table in _TABLES.items()})


register(
    en={
        "app.title": "# Video Message Studio",
        "app.subtitle": "A photo and a few words become a talking video message — offline, "
                        "private, free.",
        "tab.message": "Message", "tab.voice": "Voice", "tab.image": "Image",
        "tab.prosody": "Prosody", "tab.bgm": "BGM", "tab.video": "Video",
        "engines.title": "Engines", "engines.refresh": "Refresh",
        "coming_soon": "Coming soon: this tab is being built.",
        "footer.version": "Version", "footer.data": "Data",
    },
    ja={
        "app.title": "# ビデオメッセージ・スタジオ",
        "app.subtitle": "写真とひとことから、話すビデオメッセージを。"
                        "オフライン・プライベート・無料。",
        "tab.message": "メッセージ", "tab.voice": "音声", "tab.image": "画像",
        "tab.prosody": "抑揚", "tab.bgm": "BGM", "tab.video": "動画",
        "engines.title": "エンジン", "engines.refresh": "更新",
        "coming_soon": "準備中：このタブは現在開発中です。",
        "footer.version": "バージョン", "footer.data": "データ",
    },
)
