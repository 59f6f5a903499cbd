"""A real headless Chromium for browser tests: Debian's package, driven by Playwright.

`scripts/test.sh` installs Debian's `chromium` and the `playwright` Python package (which never
downloads a browser here: it drives /usr/bin/chromium). Use the `page` fixture from conftest:

    def test_x(page, tmp_path):
        page.goto(url); page.screenshot(path=tmp_path / "x.png")
"""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("HUMANLLM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network as root: no sandbox, no GPU, and no background connections that
# this machine would refuse.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def launch(playwright):
    """A headless Chromium browser from Debian's package."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
