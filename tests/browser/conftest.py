"""A real studio (``launch.py`` in its own process, on a free port, data in a tmp folder) and
headless Debian Chromium driven by Selenium through the installed chromedriver: nothing is
downloaded at run time (the driver path is given, so Selenium Manager never runs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.page import Page
from tests.conftest import end_process, free_port, require_binary

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("out")  # screenshots to look at (git-ignored)
CHROMIUM = ("chromium", "chromium-browser")
DESKTOP = (1400, 1000)


class Studio:
    """``launch.py`` as a person starts it, in a subprocess with its own data folder."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
        env.update(PYTHONPATH=str(ROOT), CI="1", STUDIO_LOG_LEVEL="WARNING")
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "--host", "127.0.0.1", "--port",
             str(self.port), "--data-dir", str(data_dir), "--workers", "2", "--no-browser"],
            cwd=data_dir.parent, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"launch.py exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"studio not up: {self.log.read_text()[-3000:]}")

    def close(self) -> None:
        end_process(self.process, timeout=30)
        self._log_file.close()


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    root = tmp_path_factory.mktemp("studio")
    server = Studio(root / "data", root / "launch.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()


def make_driver(lang: str, size: tuple[int, int], profile: Path):
    """Headless Chromium in ``lang`` (UI language and Accept-Language) at ``size``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = require_binary(*CHROMIUM)
    driver_path = require_binary("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--mute-audio",
                 "--autoplay-policy=no-user-gesture-required", f"--lang={lang}",
                 f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": f"{lang},{lang}"})
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: Selenium Manager never fetches
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_window_size(*size)
    return driver


@pytest.fixture
def page(request: pytest.FixtureRequest, studio, tmp_path: Path) -> Iterator[Page]:
    lang = request.param
    driver = make_driver(lang, DESKTOP, tmp_path / "profile")
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    shutil.rmtree(OUT / name, ignore_errors=True)  # this run's screenshots only
    shown = Page(driver, studio.url, lang, OUT / name)
    try:
        shown.open()
        yield shown
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def group_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures import portraits

    path = tmp_path_factory.mktemp("photos") / "two_people.png"
    portraits.group_photo().save(path)
    return path
