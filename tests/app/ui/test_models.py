"""The Models panel: the catalogue as a person sees it, and a download from it that the
Engines panel picks up without a restart."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest

from app.ui import jobs_desk
from app.ui.jobs import is_admin
from app.ui.models import HEADERS, download, model_rows
from models.base import EngineSettings
from models.catalog import CATALOG, ModelSpec, WeightFile, Words
from models.registry import CAPABILITIES, Entry, create_engine
from tests.conftest import LiveServer
from tests.stubs.hub import HubStub

# A throwaway engine: its module (this one) declares the class and its weights' spec; one
# registry entry is all the rest of the studio needs to list, label and download it.
THROWAWAY = ModelSpec(
    name="throwaway", title="Throwaway matte", what=Words("test matting", "試験用の切り抜き"),
    repo_id="studio-tests/throwaway", subdir=("throwaway",),
    files=(WeightFile("model.onnx", "model.onnx", 0.05),),
    licence="test licence", commercial_use=False,
    licence_note=Words("NON-COMMERCIAL: test weights only.", "非商用: 試験用の重みです。"),
    source="https://example.invalid/throwaway")


class ThrowawayCutout:
    name = "throwaway"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    def available(self) -> tuple[bool, str]:
        missing = THROWAWAY.missing(self.settings)
        return not missing, f"missing {', '.join(missing)}" if missing else "ready"

    def close(self) -> None:
        pass


def _panel(services: Any) -> tuple[EngineSettings, Any]:
    """What the panel is built from: the engine settings and the admin check."""
    return services.settings.engine_settings(), lambda request: is_admin(jobs_desk(services),
                                                                          request)


def test_rows_show_licence_source_and_where_weights_go(services) -> None:
    rows = {r[0].split(" ")[0]: dict(zip(HEADERS, r, strict=True)) for r in model_rows(services.settings.engine_settings())}
    assert set(rows) == set(CATALOG)
    assert rows["wav2lip"]["commercial use"].startswith("NO (NON-COMMERCIAL")
    assert rows["sam2"]["commercial use"] == "yes"
    assert rows["sam2"]["licence"] == "Apache-2.0"
    assert rows["openvoice"]["source"] == "https://github.com/myshell-ai/OpenVoice"
    models_dir = services.settings.data_dir / "models"
    assert rows["segformer"]["folder"] == str(models_dir / "segformer")
    assert rows["birefnet"]["status"].startswith("missing")


def test_rows_speak_japanese(services) -> None:
    rows = {r[0].split(" ")[0]: r for r in model_rows(services.settings.engine_settings(), "ja")}
    assert rows["sam2"][0] == "sam2 (輪郭の精密化)"
    assert rows["sam2"][4] == "はい"
    assert rows["wav2lip"][4].startswith("不可 (非商用: ")
    assert rows["birefnet"][1].startswith("未配置: ")


def test_download_from_the_panel_is_picked_up_by_the_engines(services, monkeypatch) -> None:
    weights = os.urandom(50_000)
    refiner = {r["name"]: r for r in services.inventory()["refiner"]}
    assert refiner["sam2"]["available"] is False
    with HubStub() as hub:
        hub.add_repo(CATALOG["sam2"].repo_id, {"config.json": b"{}",
                                                "model.safetensors": weights})
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        table, note = download(*_panel(services), "sam2", None)
    assert note.startswith("sam2: ready")
    assert table["headers"] == HEADERS
    row = dict(zip(HEADERS, next(r for r in table["data"] if r[0].startswith("sam2")),
                   strict=True))
    assert row["status"] == "ready"
    assert hashlib.sha256(weights).hexdigest() in row["sha256"]
    refiner = {r["name"]: r for r in services.inventory()["refiner"]}
    assert refiner["sam2"]["available"] is True  # same process, no restart


def test_failed_download_is_reported_in_the_panel(services, monkeypatch) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    _, note = download(*_panel(services), "wav2lip", None)
    assert note.startswith("wav2lip: download failed: ")
    assert "next try in 1 min" in note


@pytest.mark.slow
def test_models_panel_is_in_the_ui(services) -> None:
    with LiveServer(services, with_ui=True) as server:
        config = httpx.get(server.url + "/config").json()
    translations = config.get("i18n_translations") or {}
    assert translations["en"]["models.title"] == "Models"
    assert translations["ja"]["models.title"] == "モデル"
    dropdowns = [c for c in config["components"] if c["type"] == "dropdown"]
    assert any({tuple(x)[0] for x in c["props"].get("choices", [])} >= set(CATALOG)
               for c in dropdowns)


def test_health_says_downloading_and_download_failed(tmp_path, monkeypatch) -> None:
    """With downloads allowed and no hub, /health tells why the neural engines are not ready."""
    from fastapi.testclient import TestClient

    from app.config import load_settings
    from app.main import create_app
    from app.services import build_services
    from models.downloads import manager_for
    from tests.conftest import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    settings = load_settings(data_dir=tmp_path / "data", queue_url="memory://", workers=0,
                             allow_downloads=True)
    services = build_services(settings)
    try:
        with TestClient(create_app(services, with_ui=False)) as client:
            first = client.get("/health").json()["data"]
            sam2 = next(e for e in first["engines"]["refiner"] if e["name"] == "sam2")
            assert sam2["available"] is False
            assert sam2["reason"].startswith(("downloading", "download failed"))
            assert manager_for(settings.engine_settings()).state("sam2").finished.wait(30)
            later = client.get("/health").json()["data"]
        sam2 = next(e for e in later["engines"]["refiner"] if e["name"] == "sam2")
        assert sam2["reason"].startswith("download failed: ")
        assert sam2["reason"].endswith("next try in 1 min")
        assert later["models"]["sam2"]["download"]["status"] == "failed"
        assert later["models"]["sam2"]["status"].startswith("download failed")
    finally:
        services.close()


def test_a_new_engine_is_its_module_and_one_registry_entry(services, monkeypatch, capsys) -> None:
    """The engine above, registered by one entry and nothing else, is on the Models panel in
    both languages (its label and licence note), in ``python -m app.models list``, and
    downloads from the panel into the folder its engine reads."""
    from app.models import main

    monkeypatch.setitem(CAPABILITIES["cutout"], "throwaway",
                        Entry(f"{__name__}:ThrowawayCutout", weights=f"{__name__}:THROWAWAY"))
    en = {r[0].split(" ")[0]: dict(zip(HEADERS, r, strict=True)) for r in model_rows(services.settings.engine_settings())}
    ja = {r[0].split(" ")[0]: r for r in model_rows(services.settings.engine_settings(), "ja")}
    assert en["throwaway"]["model name"] == "throwaway (test matting)"
    assert en["throwaway"]["commercial use"] == "NO (NON-COMMERCIAL: test weights only.)"
    assert en["throwaway"]["status"] == "missing: model.onnx"
    assert ja["throwaway"][0] == "throwaway (試験用の切り抜き)"
    assert ja["throwaway"][4] == "不可 (非商用: 試験用の重みです。)"
    assert ja["throwaway"][1] == "未配置: model.onnx"

    monkeypatch.setenv("STUDIO_DATA_DIR", str(services.settings.data_dir))
    assert main(["list", "throwaway"]) == 0
    listed = capsys.readouterr().out
    assert "Throwaway matte" in listed and "NOT FOR COMMERCIAL USE" in listed

    engine = create_engine("cutout", "throwaway", services.settings.engine_settings())
    assert engine.available()[0] is False
    with HubStub() as hub:
        hub.add_repo(THROWAWAY.repo_id, {"model.onnx": b"weights"})
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        _, note = download(*_panel(services), "throwaway", None)
    assert note.startswith("throwaway: ready")
    assert engine.available() == (True, "ready")
