"""English and Japanese, chosen from the browser's Accept-Language (Japanese first users,
English Space users)."""

from __future__ import annotations

SUPPORTED = ("en", "ja")


def pick_language(accept_language: str | None, default: str = "en") -> str:
    """The best of our languages for an ``Accept-Language`` header (q-values honoured)."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED and quality > 0:
            choices.append((-quality, index, primary))
    return sorted(choices)[0][2] if choices else default


# The words every surface shares (job states and kinds, step names, table headers, the
# toast titles), keyed by id: the UI registers them with its own strings (app/ui/text.py), so
# a Japanese page never shows an English status word, step or header. Error messages come from
# the errors themselves (StudioError.message / message_ja, keyed by error code).
CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        "error.title": "Error", "warning.title": "Note", "info.title": "Done",
        "word.all": "all", "word.auto": "auto", "word.none": "none", "word.yes": "yes",
        "word.no": "no",
        "status.queued": "queued", "status.processing": "processing",
        "status.completed": "completed", "status.failed": "failed",
        "status.cancelled": "cancelled",
        "kind.voice.evolve": "voice: evolved voice", "step.search": "evolving the voice",
        "kind.message.generate": "message", "kind.voice.synthesize": "voice: speech",
        "kind.voice.profile": "voice: profile", "kind.image.detect": "image: detect",
        "kind.image.cutout": "image: cut out", "kind.image.process": "image: process (API)",
        "kind.prosody.adjust": "prosody", "kind.bgm.mix": "BGM: mix",
        "kind.video.preview": "video: preview", "kind.video.render": "video: render",
        "kind.diagnostics.staged": "diagnostics: staged",
        "kind.diagnostics.tone": "diagnostics: tone",
        "step.image": "cutting out the photo", "step.voice": "speaking the words",
        "step.prosody": "tuning the voice", "step.bgm": "mixing the music",
        "step.video": "animating the face", "step.subtitles": "adding subtitles",
        "step.done": "done", "step.synthesize": "speaking the words",
        "step.convert": "matching the voice", "step.check clips": "checking the clips",
        "step.embed": "learning the voice", "step.calibrate voice matching":
        "calibrating voice matching", "step.save": "saving", "step.prepare": "preparing",
        "step.render": "animating the face", "step.encode": "encoding the video",
        "step.upload": "uploading", "step.submit": "submitting", "step.download": "downloading",
        "step.loop": "looping the music", "step.ducking": "ducking under the voice",
        "step.loudness": "setting the loudness", "step.mixed": "mixed",
        "step.waiting": "waiting for a worker", "step.failed": "failed",
        "step.cancelled": "cancelled", "step.queued": "queued",
        "step.detect": "detecting people", "step.cutout": "cutting out", "step.adjust": "adjusting",
        "step.mix": "mixing", "step.preview": "preview", "step.profile": "making the profile",
        "mood.neutral": "neutral", "mood.happy": "happy", "mood.celebration": "celebration",
        "mood.excited": "excited", "mood.calm": "calm", "mood.sad": "sad",
        "mood.energetic": "energetic", "mood.tender": "tender", "mood.custom": "custom",
        "mood.auto": "auto (from the text)",
        "gender.female": "female", "gender.male": "male", "gender.neutral": "neutral voice",
    },
    "ja": {
        "error.title": "エラー", "warning.title": "お知らせ", "info.title": "完了",
        "word.all": "すべて", "word.auto": "自動", "word.none": "なし", "word.yes": "はい",
        "word.no": "いいえ",
        "status.queued": "待機中", "status.processing": "処理中",
        "status.completed": "完了", "status.failed": "失敗",
        "status.cancelled": "キャンセル済み",
        "kind.voice.evolve": "音声：進化させた声", "step.search": "声を進化させています",
        "kind.message.generate": "メッセージ", "kind.voice.synthesize": "音声：合成",
        "kind.voice.profile": "音声：プロファイル", "kind.image.detect": "画像：人物検出",
        "kind.image.cutout": "画像：切り抜き", "kind.image.process": "画像：処理（API）",
        "kind.prosody.adjust": "抑揚", "kind.bgm.mix": "BGM：ミックス",
        "kind.video.preview": "動画：プレビュー", "kind.video.render": "動画：生成",
        "kind.diagnostics.staged": "診断：段階実行",
        "kind.diagnostics.tone": "診断：トーン",
        "step.image": "写真を切り抜き中", "step.voice": "音声を合成中",
        "step.prosody": "抑揚を調整中", "step.bgm": "BGM をミックス中",
        "step.video": "顔を動かしています", "step.subtitles": "字幕を追加中",
        "step.done": "完成", "step.synthesize": "音声を合成中",
        "step.convert": "声を合わせています", "step.check clips": "録音を確認中",
        "step.embed": "声の特徴を学習中", "step.calibrate voice matching":
        "声の合わせ込みを調整中", "step.save": "保存中", "step.prepare": "準備中",
        "step.render": "顔を動かしています", "step.encode": "動画を書き出し中",
        "step.upload": "アップロード中", "step.submit": "送信中", "step.download": "ダウンロード中",
        "step.loop": "音楽をループ中", "step.ducking": "声の下に音楽を調整中",
        "step.loudness": "音量を調整中", "step.mixed": "ミックス完了",
        "step.waiting": "ワーカーを待っています", "step.failed": "失敗",
        "step.cancelled": "キャンセル済み", "step.queued": "待機中",
        "step.detect": "人物を検出中", "step.cutout": "切り抜き中", "step.adjust": "調整中",
        "step.mix": "ミックス中", "step.preview": "プレビュー", "step.profile": "プロファイル作成中",
        "mood.neutral": "ふつう", "mood.happy": "楽しい", "mood.celebration": "お祝い",
        "mood.excited": "わくわく", "mood.calm": "穏やか", "mood.sad": "しんみり",
        "mood.energetic": "元気", "mood.tender": "やさしい", "mood.custom": "その他",
        "mood.auto": "自動（本文から）",
        "gender.female": "女性", "gender.male": "男性", "gender.neutral": "中性",
    },
}


def text(key: str, lang: str = "en") -> str:
    """The catalogue's word for ``key`` in ``lang`` (English, then the key, when missing)."""
    return CATALOGUE.get(lang, CATALOGUE["en"]).get(key) or CATALOGUE["en"].get(key, key)


def step_text(step: str | None, lang: str = "en") -> str:
    """A person's words for a pipeline step name ("render", "synthesize", "image,voice");
    an unknown step is shown as it is rather than hidden."""
    if not step:
        return ""
    parts = [part.split(":")[0].strip() for part in step.split(",")]
    return " + ".join(text(f"step.{part}", lang) if f"step.{part}" in CATALOGUE["en"] else part
                      for part in parts if part)
