"""The dashboard in headless Chromium (Debian's chromium + chromium-driver, driven by selenium)."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from test_api_support import LiveServer

from anomaly_detection import Settings
from anomaly_detection.api import create_app

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _driver(*extra_args: str):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None or not Path(CHROMEDRIVER).exists():
        message = "chromium and chromium-driver are not installed (Debian packages; .ci/run installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,800", "--no-first-run", "--disable-extensions", *extra_args):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _driver()
    yield driver
    driver.quit()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout} s")
        time.sleep(0.05)


def test_dashboard_shows_an_injected_anomaly(browser):
    from selenium.webdriver.common.by import By

    app = create_app(Settings(detection_method="zscore", min_samples=5))
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:
        values = [20.0 + 0.2 * ((i * 7) % 5) for i in range(60)]
        http.post("/api/detect/batch", json={"sensor_name": "boiler-temp", "values": values,
                                             "timestamps": list(range(1000, 1060))})  # fmt: skip
        browser.get(url + "/")
        assert browser.title.startswith("anomaly-detection")
        _wait(
            lambda: browser.execute_script("return document.body.dataset.stream === 'open'"),
            15,
            "the SSE stream",
        )
        names = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#sensors li")]
        assert "boiler-temp" in names
        assert browser.find_elements(By.CSS_SELECTOR, "#alerts li") == []

        r = http.post("/api/detect", json={"sensor_name": "boiler-temp", "value": 95.0, "timestamp": 1060})
        assert r.json()["is_anomaly"] is True
        injected = time.monotonic()
        item = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#alerts li[data-sensor='boiler-temp']"),
                     2.0, "the injected anomaly in the alert list")[0]  # fmt: skip
        seen_after = time.monotonic() - injected
        assert "95" in item.text
        assert "critical" in item.get_attribute("class")
        # the sensor is selected and its chart marks the anomaly
        _wait(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#chart circle.anomaly"), 5, "the anomaly marker"
        )
        assert browser.find_element(By.ID, "chart-title").text == "boiler-temp"
        assert len(browser.find_elements(By.CSS_SELECTOR, "#chart polyline.line")) == 1
        _wait(lambda: "ok" in browser.find_element(By.ID, "status").text, 5, "the health pill")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"anomaly shown {seen_after * 1000:.0f} ms after injection; screenshot {shot}")


def test_dashboard_static_files_are_served():
    app = create_app(Settings())
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert "static/app.js" in page.text
        assert "http://" not in page.text  # nothing from a CDN
        assert "https://" not in page.text
        assert http.get("/static/app.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/static/style.css").status_code == 200
        assert http.get("/static/../app.py").status_code == 404
        assert http.get("/static/nope.js").status_code == 404


def test_dashboard_selects_an_alert_still_in_its_window_and_dates_alerts(browser):
    from selenium.webdriver.common.by import By

    app = create_app(Settings(detection_method="zscore", window_size=20, min_samples=5))
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:

        def series(sensor, start, n, spike_at=None):
            values = [20.0 + 0.2 * ((i * 7) % 5) for i in range(n)]
            if spike_at is not None:
                values[spike_at] = 95.0
            r = http.post("/api/detect/batch", json={"sensor_name": sensor, "values": values,
                                                     "timestamps": [start + i for i in range(n)]})  # fmt: skip
            assert r.status_code == 200

        # The oldest alert and the newest one have since left their sensors' 20-point windows;
        # the one between is still in its window: that sensor is the one to show.
        series("gone-old", 1_700_000_000, 30, spike_at=10)
        series("still-here", 1_700_000_100, 15, spike_at=12)
        series("gone-new", 1_700_000_200, 15, spike_at=12)
        series("gone-new", 1_700_000_215, 40)
        assert [a["sensor_name"] for a in http.get("/api/anomalies").json()["items"]] == [
            "gone-new", "still-here", "gone-old"]  # fmt: skip
        browser.get(url + "/")
        # The heading reads "Select a sensor" until the page has chosen one (a busy machine is slow to).
        title = lambda: browser.find_element(By.ID, "chart-title").text
        _wait(lambda: title() != "Select a sensor", 10, "a selected sensor")
        assert title() == "still-here"
        _wait(
            lambda: browser.find_elements(By.CSS_SELECTOR, "#chart circle.anomaly"), 5, "the anomaly marker"
        )
        metas = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#alerts li .meta")]
        assert len(metas) == 3
        for meta in metas:  # local date and time of the point: 2023-11-14 ..:..:..
            assert re.search(r" · 2023-11-1[45] \d\d:\d\d:\d\d$", meta), meta
