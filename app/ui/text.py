"""UI strings in English and Japanese; the browser's language picks (Gradio i18n).

One catalogue, keyed by message id: the shared vocabulary of ``app.i18n.CATALOGUE`` (statuses,
job kinds, step names, toast titles) plus what each tab module registers with :func:`register`.
Components are labelled with :func:`t` (translated in the browser); text built in Python
(errors, tables, notes) uses :func:`plain` with the request's language.
``app.ui.build_i18n()`` hands the merged tables to Gradio at mount time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import gradio as gr
from gradio.i18n import I18nData

from app.i18n import CATALOGUE
from models.errors import StudioError

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


def ui_error(message: str, lang: str = "en") -> gr.Error:
    """A toast with the title in the page's language (Gradio's own title is always "Error")."""
    return gr.Error(message, title=plain("error.title", lang))


def studio_error(exc: StudioError, lang: str = "en") -> gr.Error:
    """A :class:`StudioError` as a readable toast: its message in ``lang`` and its code."""
    return ui_error(f"{exc.localized(lang)} ({exc.code})", lang)


def table(header_keys: list[str], rows: list[list[Any]], lang: str = "en") -> dict[str, Any]:
    """A Dataframe value whose headers are in ``lang`` (Gradio does not translate headers)."""
    return {"headers": [plain(key, lang) for key in header_keys], "data": rows}


def label(prefix: str, value: str) -> Any:
    """The catalogue label ``prefix + value`` (e.g. ``"mood."``, ``"status."``) for a
    component, or the value itself when the catalogue has no word for it (a user's own)."""
    return t(prefix + value) if prefix + value in _TABLES["en"] else value


def word(prefix: str, value: str, lang: str) -> str:
    """:func:`label` as text in ``lang`` (for tables and notes built in Python)."""
    return plain(prefix + value, lang) if prefix + value in _TABLES["en"] else value


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def shown_time(when: float | str | None, lang: str = "en") -> str:
    """A moment as people read it in ``lang``, local time, one form on every tab (jobs,
    profiles, the message history): "Dec 5, 2026, 10:30" / "2026年12月5日 10:30". ``when``
    is a Unix time or a stored UTC stamp ("2026-12-05T10:30:00Z"); anything else is shown
    as it is."""
    if when is None or when == "":
        return ""
    if isinstance(when, str):
        try:
            moment = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return when
        local = moment.astimezone()
    else:
        local = datetime.fromtimestamp(when)
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if lang == "ja":
        return f"{local.year}年{local.month}月{local.day}日 {clock}"
    return f"{MONTHS[local.month - 1]} {local.day}, {local.year}, {clock}"


TOAST_TITLES = {"error": "error.title", "warning": "warning.title", "info": "info.title",
                "success": "info.title"}


def toast_css() -> str:
    """Toast titles in the page's language. Gradio's toast shows its type ("Error",
    "Warning") as the title whatever the server sends, so each language's title is drawn
    from the catalogue by CSS on ``<html lang>`` (which Gradio sets to the UI language)."""
    rules = []
    for lang in _TABLES:
        for kind, key in TOAST_TITLES.items():
            title = plain(key, lang).replace("\\", "").replace('"', "")
            rules.append(f'html[lang|="{lang}"] .toast-title.{kind} {{font-size: 0}}\n'
                         f'html[lang|="{lang}"] .toast-title.{kind}::before '
                         f'{{content: "{title}"; font-size: var(--text-md)}}')
    return "\n".join(rules) + "\n"


def tabs_css() -> str:
    """The word beside the "⋯" that holds the tabs a narrow screen has no room for (Gradio
    shows only the dots, labelled "More tabs" in English whatever the page's language)."""
    return "".join(
        f'html[lang|="{lang}"] .overflow-menu > button::after '
        f'{{content: "{plain("tabs.more", lang)}"; margin-left: .4em; font-size: var(--text-md)}}\n'
        for lang in _TABLES)


def page_head() -> str:
    """A small script for the page's ``<head>``: Gradio's own English that its i18n does not
    reach (the "⋯" button's screen-reader label "More tabs", the status tracker's hard-coded
    "queue: 1/1 |" and "processing |") said in the language of ``<html lang>``, each time
    Gradio draws it (a MutationObserver: Gradio resets a text only when it changes, and the
    observer sees that too)."""
    import json

    words = {lang: {"more": plain("tabs.more", lang),
                    "queue": plain("tracker.queue", lang) + ":",
                    "processing": plain("tracker.processing", lang)} for lang in _TABLES}
    return """<script>
(() => {
  const WORDS = __WORDS__;
  const said = () => WORDS[(document.documentElement.lang || "en").split("-")[0]];
  const fix = () => {
    const w = said();
    if (!w || !document.body) return;
    document.querySelectorAll(".overflow-menu > button").forEach(b => {
      if (b.getAttribute("aria-label") !== w.more) b.setAttribute("aria-label", w.more);
    });
    document.querySelectorAll("[data-testid='status-tracker']").forEach(t => {
      const walk = document.createTreeWalker(t, NodeFilter.SHOW_TEXT);
      while (walk.nextNode()) {
        const n = walk.currentNode, v = n.nodeValue;
        const next = v.replace(/^queue:/, w.queue).replace(/^processing(?= \\|)/, w.processing);
        if (next !== v) n.nodeValue = next;
      }
    });
  };
  new MutationObserver(fix).observe(document.documentElement, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["lang", "aria-label"]});
  fix();
})();
</script>""".replace("__WORDS__", json.dumps(words, ensure_ascii=False))


def build_i18n() -> gr.I18n:
    return gr.I18n(**{lang: dict(table) for lang, table in _TABLES.items()})


register(en=CATALOGUE["en"], ja=CATALOGUE["ja"])
register(
    en={
        "app.title": "# Video Message Studio",
        "app.subtitle": "A photo and a few words become a talking video message — offline, "
                        "private, free.",
        "tab.message": "Message", "tab.voice": "Voice", "tab.image": "Image",
        "tab.prosody": "Prosody", "tab.bgm": "BGM", "tab.video": "Video",
        "engines.title": "Engines", "engines.refresh": "Refresh", "tabs.more": "More tabs",
        "tracker.queue": "queue", "tracker.processing": "processing",
        "status.queue_position": "In queue: {position} of {size}",
        "coming_soon": "Coming soon: this tab is being built.",
        "footer.version": "Version", "footer.data": "Data",
        "footer.storage": "storage", "app.name": "Video Message Studio",
        "storage.local": "this computer", "storage.s3": "S3 object storage",
    },
    ja={
        "app.title": "# ビデオメッセージ・スタジオ",
        "app.subtitle": "写真とひとことから、話すビデオメッセージを。"
                        "オフライン・プライベート・無料。",
        "tab.message": "メッセージ", "tab.voice": "音声", "tab.image": "画像",
        "tab.prosody": "抑揚", "tab.bgm": "BGM", "tab.video": "動画",
        "engines.title": "エンジン", "engines.refresh": "更新", "tabs.more": "ほかのタブ",
        "tracker.queue": "順番待ち", "tracker.processing": "処理中",
        "status.queue_position": "順番待ち：{size} 件中 {position} 番目",
        "coming_soon": "準備中：このタブは現在開発中です。",
        "footer.version": "バージョン", "footer.data": "データ",
        "footer.storage": "保存先", "app.name": "ビデオメッセージ・スタジオ",
        "storage.local": "このコンピュータ", "storage.s3": "S3 オブジェクトストレージ",
    },
)
