"""Screenshot of the running demo, after its first prediction has arrived (headless Chromium via Playwright).

    MARS_MODEL=runs/mars-segformer python demo/app.py --port 7861 &
    python demo/screenshot.py http://127.0.0.1:7861/ docs/demo.png [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse


def screenshot(url: str, out: str, chromium: str | None = None, timeout_s: float = 180) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url)
        page.wait_for_selector("text=area share per class", timeout=timeout_s * 1000)
        # the app segments the first example on opening; wait until no output is 'processing'
        page.wait_for_function("() => !document.body.innerText.includes('processing')", timeout=timeout_s * 1000)
        page.wait_for_timeout(1000)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="a Chromium binary (Debian: apt-get install chromium)")
    a = ap.parse_args()
    screenshot(a.url, a.out, a.chromium)
