"""Headless Chromium for the dashboard's browser tests: where it is, how it starts, a page that keeps its errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["ARGS", "CHROMIUM", "TIMEOUT_MS", "available", "launched", "new_page"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
TIMEOUT_MS = 15_000


def available() -> bool:
    """Whether the Debian chromium is installed (scripts/test.sh installs it); the tests skip without it."""
    return Path(CHROMIUM).exists()


@contextmanager
def launched(sync_api: Any) -> Iterator[Any]:
    """A headless Chromium through ``playwright.sync_api`` (the caller's ``importorskip``), closed after."""
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def new_page(browser: Any, width: int, height: int, errors: list[str] | None = None) -> Any:
    """A page of ``width`` × ``height`` px waiting up to ``TIMEOUT_MS``; console and page errors go to ``errors``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
    return page
