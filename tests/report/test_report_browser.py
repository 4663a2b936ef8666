"""A real browser opens the report of a short real run: the page loads without console errors and
every plot image has rendered (non-zero natural size). Headless Chromium from the Debian packages
(`chromium`, `chromium-driver`), driven by selenium through /usr/bin/chromedriver; nothing is
downloaded. Skipped only when Chromium is missing and RFT_REQUIRE_BROWSER is unset (CI sets it)."""

import json
import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        if os.environ.get("RFT_REQUIRE_BROWSER"):
            pytest.fail(f"RFT_REQUIRE_BROWSER is set but these are missing: {missing}")
        pytest.skip(f"no browser to test with: {missing} (apt-get install chromium chromium-driver)")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must never fetch a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()  # ends chromedriver and every Chromium process it started


def test_report_of_a_real_run_renders_in_chromium(browser, trained_run, tmp_path):
    run_dir, _ = trained_run
    report = run_dir / "report.html"
    # a monitor alert, so that the marked curves are rendered too
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"type": "alert", "step": 2, "monitor": "length", "message": "test alert"}) + "\n")
    from rft.report.html import write_report

    write_report([run_dir], report)

    browser.get(report.as_uri())
    browser.execute_script("return document.readyState")
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight])")
    browser.set_window_size(1400, browser.execute_script("return document.body.scrollHeight") + 100)
    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("RFT_SCREENSHOT_DIR"):
        shutil.copy(shot, os.path.join(os.environ["RFT_SCREENSHOT_DIR"], "report.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]

    assert errors == []
    ids = [i[0] for i in images]
    for panel in ["reward", "val", "length", "truncation", "kl", "entropy", "graders", "zero_std", "time"]:
        assert f"plot-{panel}" in ids, f"plot {panel} missing from {ids}"
    assert all(complete and w > 0 and h > 0 for _, complete, w, h in images), images
    assert "test alert" in browser.page_source
    assert shot.stat().st_size > 10_000, "the screenshot is blank"
