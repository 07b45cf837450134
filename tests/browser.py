"""Open a page in headless Chromium (Debian's, driven by Playwright) and say what a reader would meet:
console errors, page errors, images that did not load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


@dataclass(frozen=True)
class Opened:
    title: str
    errors: list[str]  # console errors and uncaught page errors
    images: int
    broken_images: list[str]  # alt texts of images that did not load
    text: str


def open_page(path: Path) -> Opened:
    """Load the file ``path`` in headless Chromium and report on it."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete && e.naturalWidth > 0, e.alt])")
            return Opened(title=page.title(), errors=errors, images=len(images),
                          broken_images=[alt for loaded, alt in images if not loaded], text=page.inner_text("body"))
        finally:
            browser.close()
