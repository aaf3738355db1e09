"""The Gradio UI is mounted at / beside the API: every tab is there, and mounting it does
not swallow the API's own 404s."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer

TABS = {"message", "voice", "image", "prosody", "bgm", "video"}


@pytest.fixture
def ui_server(services):
    with LiveServer(services, with_ui=True) as server:
        yield server


@pytest.mark.slow
def test_ui_serves_every_tab_and_engines_panel(ui_server) -> None:
    page = httpx.get(ui_server.url + "/")
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    config = httpx.get(ui_server.url + "/config").json()
    components = config["components"]
    tab_ids = {c["props"].get("id") for c in components if c["type"] == "tabitem"}
    assert tab_ids >= TABS
    assert any(c["type"] == "dataframe" for c in components)  # engines panel
    translations = config.get("i18n_translations") or {}
    assert translations["ja"]["tab.voice"] == "音声"
    assert translations["en"]["tab.voice"] == "Voice"


@pytest.mark.slow
def test_api_404_still_enveloped_with_ui_mounted(ui_server) -> None:
    response = httpx.get(ui_server.url + "/api/not-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert httpx.get(ui_server.url + "/health").json()["success"] is True
