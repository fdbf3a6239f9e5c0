"""Screenshot of the demo's HTML report for the README and the docs.

Runs ``yoto-sklearn demo`` (unless ``--run`` names a finished demo folder), opens
its ``report.html`` in headless Chromium (Debian's ``chromium``; Playwright drives
it) and writes ``docs/images/report_screenshot.png`` (the top of the page) and
``docs/images/report_screenshot_figures.png`` (the confusion matrices and dot plots).

    python docs/screenshot_report.py [--run yoto-demo]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"


def main(argv=None) -> None:
    """Take the screenshots."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a finished demo output folder (default: run it)")
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs chromium on PATH (apt-get install -y chromium)")
    run = Path(a.run) if a.run else Path(tempfile.mkdtemp()) / "demo"
    if not a.run:
        subprocess.run(
            ["yoto-sklearn", "demo", "--out", str(run), "--quiet"], check=True
        )
    page_path = (run / "report.html").resolve()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(page_path.as_uri())
        page.screenshot(path=str(IMAGES / "report_screenshot.png"))
        page.locator("#expression figure").first.screenshot(
            path=str(IMAGES / "report_screenshot_figures.png")
        )
        browser.close()
    print(f"wrote {IMAGES / 'report_screenshot.png'} from {page_path}")


if __name__ == "__main__":
    main()
