"""One people's date form on every tab, in the page's language: the Jobs table, the voice
profiles (table and delete list) and the message history show the same moment the same way
(the Jobs table had "12-05 10:30:45", the profiles "2026-12-05 10:30")."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from app.runner.jobs import Job
from app.ui import voice_desk
from app.ui.jobs import JOB_COLUMNS, job_row
from app.ui.message import history_caption
from app.ui.text import shown_time
from app.ui.voice import delete_choices, shown_rows, ui_profiles
from models.base import Audio
from pipelines.voice.profiles import Profile

STAMP = "2026-12-05T10:30:00Z"
MOMENT = float(calendar.timegm((2026, 12, 5, 10, 30, 0)))
FORM = {"en": r"[A-Z][a-z]{2} \d{1,2}, \d{4}, \d\d:\d\d",
        "ja": r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d"}


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_form_in_each_language() -> None:
    assert shown_time(MOMENT, "en") == shown_time(STAMP, "en") == "Dec 5, 2026, 10:30"
    assert shown_time(MOMENT, "ja") == shown_time(STAMP, "ja") == "2026年12月5日 10:30"
    assert shown_time(None, "ja") == "" and shown_time("not a date", "en") == "not a date"


def _request(lang: str) -> SimpleNamespace:
    return SimpleNamespace(headers={"accept-language": f"{lang},{lang};q=0.9"})


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_tab_shows_the_same_moment_the_same_way(services, lang: str) -> None:
    job = Job(id="0123456789abcdef", kind="message.generate", created_at=MOMENT,
              updated_at=MOMENT)
    row = job_row(job, lang)
    jobs_created = row[JOB_COLUMNS.index("jobs.col_created")]
    jobs_updated = row[JOB_COLUMNS.index("jobs.col_updated")]

    store = ui_profiles(voice_desk(services), _request(lang))
    store.save(Profile("voice_0000abcd", "Hanako", "ja", STAMP, STAMP),
               Audio(np.zeros(2400, np.float32), 24000), np.ones(4, np.float32))
    profile_date = shown_rows(voice_desk(services), _request(lang))[0][-1]
    choice = delete_choices(voice_desk(services), _request(lang))[0][0]
    history = history_caption(MOMENT, "Happy birthday", job.id, lang).split(" · ")[0]

    assert re.fullmatch(FORM[lang], jobs_created), jobs_created
    assert jobs_created == jobs_updated == profile_date == history, \
        (jobs_created, profile_date, history)
    assert choice == f"Hanako · {profile_date}"
