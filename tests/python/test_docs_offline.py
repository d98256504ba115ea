"""``/docs`` works offline: Swagger UI's files come from the installed package, not a CDN."""

from __future__ import annotations

import re

import httpx
import pytest
from test_api_support import LiveServer
from test_dashboard import _driver, _wait

from anomaly_detection import Settings
from anomaly_detection.api import create_app


def test_docs_page_references_no_external_host():
    app = create_app(Settings())
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "SwaggerUIBundle" in page.text
        assert "://" not in page.text  # every script, style, icon and the OpenAPI URL is on this app
        refs = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text) + re.findall(
            r"url: '([^']+)'", page.text
        )
        assert sorted(refs) == [
            "/docs/favicon-32x32.png", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/openapi.json",
        ]  # fmt: skip
        for ref, kind in [("/docs/swagger-ui-bundle.js", "text/javascript"), ("/docs/swagger-ui.css", "text/css"),
                          ("/docs/favicon-32x32.png", "image/png"), ("/openapi.json", "application/json")]:  # fmt: skip
            r = http.get(ref)
            assert r.status_code == 200, ref
            assert r.headers["content-type"].startswith(kind), ref
        assert http.get("/docs/../app.py").status_code == 404
        assert http.get("/docs/nope.js").status_code == 404
        # Swagger UI 5 renders OpenAPI 3.1, which FastAPI emits (version 4 refuses it).
        assert http.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_docs_render_in_chromium_with_the_network_off():
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    # Every host name but the loopback address fails to resolve: no CDN can answer.
    browser = _driver("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=direct://")
    try:
        app = create_app(Settings())
        with LiveServer(app) as url:
            with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):  # the network is off
                browser.get("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css")
            browser.get(url + "/docs")
            operations = _wait(
                lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"),
                15,
                "Swagger UI's operations",
            )
            paths = {op.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text for op in operations}
            assert "/api/detect" in {p.replace("\u200b", "") for p in paths}
            title = browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
            assert title.startswith("anomaly-detection")
    finally:
        browser.quit()


def test_redoc_page_references_no_external_host():
    app = create_app(Settings())
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:
        page = http.get("/redoc")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<redoc" in page.text
        assert "://" not in page.text  # no CDN script, no Google Fonts
        refs = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)""", page.text)
        assert sorted(refs) == ["/docs/favicon-32x32.png", "/openapi.json", "/redoc/redoc.standalone.js"]
        for ref, kind in [
            ("/redoc/redoc.standalone.js", "text/javascript"),
            ("/redoc/logo-mini.svg", "image/svg+xml"),
        ]:
            r = http.get(ref)
            assert r.status_code == 200, ref
            assert r.headers["content-type"].startswith(kind), ref
        assert len(http.get("/redoc/redoc.standalone.js").content) > 500_000  # the whole bundle
        assert http.get("/redoc/nope.js").status_code == 404
        assert http.get("/redoc/..%2Fapp.py").status_code == 404


def test_redoc_renders_in_chromium_with_the_network_off():
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    browser = _driver("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=direct://")
    try:
        app = create_app(Settings())
        with LiveServer(app) as url:
            with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):  # the network is off
                browser.get("https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js")
            browser.get(url + "/redoc")
            operations = _wait(
                lambda: browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']"),
                20,
                "ReDoc's operations",
            )
            ids = {op.get_attribute("data-section-id") for op in operations}
            assert "operation/detect_api_detect_post" in ids
            assert len(ids) == 14  # every operation of the OpenAPI document
            assert browser.find_element(By.TAG_NAME, "h1").text.startswith("anomaly-detection")
            errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == []  # every file ReDoc asked for was served
    finally:
        browser.quit()
