"""Headless Chromium for browser tests (Playwright driving Debian's chromium).

Every test here is marked `browser`; without a Chromium they are skipped with a clear message.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in this thread
# until it stops. Processes forked while it ran (the demo history's parallel load, in a later
# test) got rows of other queries from their own fresh connections; with the loop stopped first
# they do not (tests/operations/test_demo_history.py after tests/browser/ fails without this).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium not found: browser tests skipped")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; Django refuses ORM calls from a thread with a
    # running loop unless told it is safe (the tests' ORM calls are synchronous).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
