"""A person's hands on the studio page: open a tab, upload, type, click, wait for what the page
shows, take a screenshot. Every wait is on a state of the page (WebDriverWait), never a sleep."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from app.ui.text import plain

SLOW = 300.0  # a message on a loaded 2-core CI machine
TOAST = "[data-testid='toast-body']"


class Page:
    def __init__(self, driver: WebDriver, url: str, lang: str, shots: Path) -> None:
        self.driver = driver
        self.url = url
        self.lang = lang
        self.shots = shots
        self.count = 0
        shots.mkdir(parents=True, exist_ok=True)

    # -- looking -----------------------------------------------------------------------

    def word(self, key: str) -> str:
        """The catalogue's text for ``key`` in this page's language."""
        return plain(key, self.lang)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        found = self.all(css)
        return found[0].text if found else ""

    def wait(self, condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
        """Wait until ``condition()`` is truthy (page states only); its value."""
        def check(_: WebDriver) -> Any:
            try:
                return condition()
            except (StaleElementReferenceException, WebDriverException):
                return None

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(check)
        except Exception as exc:
            self.shot(f"timeout-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}")
            raise AssertionError(f"page never showed: {what} ({exc.__class__.__name__}); "
                                 f"toasts: {self.toasts()}") from None

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page as it is (looked at, uploaded nowhere)."""
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        height = self.js("return document.documentElement.scrollHeight") or 1000
        width = self.driver.get_window_size()["width"]
        self.driver.set_window_size(width, min(max(int(height) + 140, 600), 4000))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(width, self.window_height)
        return path

    window_height = 1000

    def toasts(self) -> list[str]:
        return [t.text for t in self.all(TOAST)]

    def close_toasts(self) -> None:
        self.js("document.querySelectorAll(\"[data-testid='toast-close']\")"
                ".forEach(b => b.click())")
        self.wait(lambda: not self.all(TOAST), 15, "toasts closed")

    def duration_of(self, url: str) -> float:
        """The browser's own reading of a media file's duration (metadata decoded)."""
        return float(self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const m = document.createElement(arguments[0].includes('.mp4') ? 'video' : 'audio');"
            "m.preload = 'metadata'; m.muted = true;"
            "m.onloadedmetadata = () => done(m.duration || 0); m.onerror = () => done(0);"
            "m.src = arguments[0];", url) or 0.0)

    # -- doing ---------------------------------------------------------------------------

    def open(self) -> None:
        self.driver.set_script_timeout(60)
        self.driver.get(self.url + "/")
        self.wait(lambda: self.all("button[data-tab-id='message']"), 120, "the page")
        self.wait(lambda: self.js("return document.readyState") == "complete", 60, "loaded")
        # the page-load events have answered: the footer is in this page's language and no
        # component is waiting for a load event any more
        self.wait(lambda: self.word("app.name") in self.text(".studio-footer"), SLOW,
                  "the localized footer")
        self.wait(lambda: not self.all("[data-testid='status-tracker']:not(.hide)"), SLOW,
                  "the page's load events done")

    def tab(self, tab_id: str) -> None:
        """Open a tab, from the "⋯" menu when a narrow screen keeps it there."""
        shown = self.all(f"button[data-tab-id='{tab_id}']")
        if shown and shown[0].is_displayed():
            shown[0].click()
        else:
            self.find(".overflow-menu > button").click()
            name = self.word(f"tab.{tab_id}")
            self.wait(lambda: next((b for b in self.all(".overflow-dropdown button")
                                    if b.text.strip() == name and b.is_displayed()), None),
                      15, f"{tab_id} in the tab menu").click()
        self.wait(lambda: self.find(f"button[data-tab-id='{tab_id}']")
                  .get_attribute("aria-selected") == "true", 15, f"tab {tab_id}")

    def click(self, css: str) -> None:
        element = self.wait(lambda: self.find(css), 30, css)
        self.js("arguments[0].scrollIntoView({block: 'center'})", element)
        self.wait(lambda: element.is_enabled() and element.is_displayed(), 30, f"{css} usable")
        element.click()

    def upload(self, elem_id: str, path: Path) -> None:
        field = self.wait(lambda: self.find(f"#{elem_id} input[type='file']"), 60,
                          f"the upload field of {elem_id}")
        field.send_keys(str(path))

    def type_into(self, elem_id: str, text: str) -> None:
        box = self.wait(lambda: self.find(f"#{elem_id} textarea, #{elem_id} input"), 60,
                        f"the text box {elem_id}")
        box.clear()
        box.send_keys(text)

    def audio_url(self, elem_id: str) -> str | None:
        """The file behind a Gradio audio player (its download link)."""
        links = self.all(f"#{elem_id} a[download]")
        return links[0].get_attribute("href") if links else None

    def audio_shown(self, elem_id: str, previous: str | None = None) -> str:
        """Wait for a new audio in the player, its clock showing a length; the file's URL."""
        def ready() -> str | None:
            url = self.audio_url(elem_id)
            shown = self.text(f"#{elem_id} time#duration")
            if url and url != previous and shown and seconds(shown) > 0:
                return url
            return None

        return self.wait(ready, SLOW, f"audio in {elem_id}")

    def image_shown(self, elem_id: str) -> str:
        return self.wait(lambda: next((i.get_attribute("src") for i in
                                       self.all(f"#{elem_id} img")
                                       if i.get_attribute("src")), None),
                         SLOW, f"image in {elem_id}")

    def video_in(self, elem_id: str) -> WebElement | None:
        found = self.all(f"#{elem_id} video")
        return found[0] if found else None

    def video_ready(self, elem_id: str, previous: str | None = None) -> tuple[str, float]:
        """Wait for a (new) video whose metadata gives a positive duration."""
        def ready() -> tuple[str, float] | None:
            video = self.video_in(elem_id)
            if video is None:
                return None
            src = video.get_attribute("src") or ""
            duration = self.js("return arguments[0].duration", video) or 0
            return (src, float(duration)) if src and src != previous and duration > 0 else None

        return self.wait(ready, SLOW, f"video in {elem_id}")

    def play(self, elem_id: str) -> float:
        """Play the video muted and wait for its clock to advance; the time reached."""
        video = self.video_in(elem_id)
        assert video is not None
        self.js("arguments[0].muted = true; arguments[0].play();", video)
        return float(self.wait(lambda: (lambda t: t if t > 0.3 else None)(
            float(self.js("return arguments[0].currentTime", video) or 0)), 60,
            f"{elem_id} playing"))

    def progress_text(self, elem_id: str) -> str:
        return self.text(f"#{elem_id} [data-testid='status-tracker']")

    def checked(self, elem_id: str) -> list[str]:
        return [box.find_element(By.XPATH, "./..").text.strip()
                for box in self.all(f"#{elem_id} input[type='checkbox']") if box.is_selected()]

    def body_text(self) -> str:
        return str(self.js("return document.body.innerText"))

    def broken_in(self, css: str) -> list[str]:
        """The Latin words and numbers inside ``css``'s table cells that the browser broke
        over two lines, and the cells holding an arrow ("0.50 → 0.76") that take more than one
        line (Japanese wraps between characters, so only Latin runs are words here)."""
        return list(self.js("""
const broken = [];
const lines = (range) => {
  const rects = [...range.getClientRects()].filter(r => r.width > 0);
  const tops = [];
  for (const r of rects) if (!tops.some(t => Math.abs(t - r.top) < r.height / 2)) tops.push(r.top);
  return tops.length;
};
for (const cell of document.querySelectorAll(arguments[0] + ' th, ' + arguments[0] + ' td')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const words = /[A-Za-z0-9][A-Za-z0-9.'%-]*/g;
    let m;
    while ((m = words.exec(node.data))) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      if (lines(range) > 1) broken.push(m[0]);
    }
  }
  if (cell.textContent.includes('→')) {
    const range = document.createRange();
    range.selectNodeContents(cell);
    if (lines(range) > 1) broken.push(cell.textContent.trim());
  }
}
return broken;""", css) or [])

    def fits_width(self, css: str, slack: int = 1) -> bool:
        """Whether the first element matching ``css`` shows all its width without scrolling
        sideways (within ``slack`` pixels)."""
        return bool(self.js("const e = document.querySelector(arguments[0]);"
                            "return e.scrollWidth <= e.clientWidth + arguments[1]", css, slack))

    def no_horizontal_scroll(self) -> bool:
        return self.fits_width("html")


def seconds(clock: str) -> float:
    """"0:05" or "1:02:03" as seconds."""
    total = 0.0
    for part in clock.strip().split(":"):
        try:
            total = total * 60 + float(part)
        except ValueError:
            return 0.0
    return total
