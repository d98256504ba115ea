"""Draw the README's dashboard picture: ``anomaly-detection demo`` on a free 127.0.0.1 port,
headless Chromium (Debian's chromium + chromium-driver, through selenium) on its dashboard
once incidents have come in, a screenshot to docs/api-dashboard.png.

    python scripts/screenshot_dashboard.py [--seconds 40] [--out docs/api-dashboard.png]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="traffic before the screenshot")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "api-dashboard.png")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = _free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "anomaly_detection.cli", "demo", "--host", "127.0.0.1", "--port", str(port),
         "--incident-every", "10", "--first-incident", "5", "--duration", str(args.seconds + 30)],
    )  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,800", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        time.sleep(args.seconds)
        browser.get(f"http://127.0.0.1:{port}/")
        time.sleep(5)  # the recent alerts, the chosen sensor's chart and the health pill
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not browser.save_screenshot(str(args.out)):
            raise SystemExit("the screenshot failed")
        print(f"wrote {args.out}")
    finally:
        browser.quit()
        demo.terminate()
        demo.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
