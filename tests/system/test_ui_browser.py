"""The Airflow UI in a real browser: headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) logs in to `airflow standalone` serving the example pipelines, finds them with no import errors
and opens greeter-app's graph. The screenshot goes to tmp_path, and to $HANDSOFF_SCREENSHOT_DIR when set.

Selenium Manager never runs (it would download a driver): the driver and the browser are given by path.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from handsoff.hooks.airflow_api import AirflowApi
from support.airflow import AirflowProcess, api_client, api_env, free_port, wait_for_http

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
EXAMPLE_DAGS = ("greeter-app", "greeter-config", "greeter-lambda")

pytestmark = pytest.mark.slow


@pytest.fixture
def standalone(example_specs, tmp_path) -> Iterator[str]:
    """`airflow standalone` in a fresh AIRFLOW_HOME serving the example pipelines; its URL."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
    port = free_port()
    env = api_env(port, {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    url = f"http://127.0.0.1:{port}"
    with AirflowProcess(["standalone"], env, tmp_path / "standalone.log") as airflow:
        wait_for_http(f"{url}/api/v2/monitor/health", timeout=120, proc=airflow)
        client = api_client(url)
        deadline = time.monotonic() + 120
        while not _parsed(client) and time.monotonic() < deadline:
            time.sleep(1)
        assert _parsed(client), airflow.tail()
        yield url


def _parsed(client: AirflowApi) -> bool:
    status, body = client._request("GET", "/api/v2/dags?limit=100")
    return status == 200 and set(EXAMPLE_DAGS) <= {dag["dag_id"] for dag in body["dags"]}


@pytest.fixture
def browser(tmp_path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:  # a missing browser fails the check, never skips it
        pytest.fail(f"{', '.join(missing)} missing: install chromium and chromium-driver (make services)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _until(driver, what: str, check: Callable[[object], object], timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(check)
    except Exception as err:
        text = driver.find_element("tag name", "body").text[:2000]
        raise AssertionError(f"{what}: not seen in {timeout}s at {driver.current_url}\n{text}") from err


def test_the_ui_lists_the_example_pipelines_and_shows_the_graph(standalone, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, url = browser, standalone
    driver.get(f"{url}/")
    # not logged in: the SimpleAuthManager login form
    username = _until(driver, "login form", lambda d: d.find_element(By.NAME, "username"))
    username.send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _until(
        driver, "logged in", lambda d: "/auth/login" not in d.current_url and "Sign in" not in d.page_source
    )

    # the home page shows a "Dag Import Error(s)" button only when there are DAG import errors
    driver.get(f"{url}/")
    _until(driver, "dashboard", lambda d: "Welcome" in d.find_element(By.TAG_NAME, "body").text)
    time.sleep(2)  # the import errors count is fetched after the page renders
    assert "Dag Import Error" not in driver.find_element(By.TAG_NAME, "body").text

    driver.get(f"{url}/dags")
    listed = _until(
        driver,
        "the example pipelines in the DAG list",
        lambda d: all(name in d.find_element(By.TAG_NAME, "body").text for name in EXAMPLE_DAGS),
    )
    assert listed
    errors = api_client(url).get("/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors  # the REST API agrees

    structure = api_client(url).get("/ui/structure/structure_data?dag_id=greeter-app")
    assert {"source", "build"} <= {node["id"] for node in structure["nodes"]}, structure

    driver.get(f"{url}/dags/greeter-app")
    _until(driver, "the DAG page", lambda d: "greeter-app" in d.find_element(By.TAG_NAME, "body").text)
    if not driver.find_elements(By.CSS_SELECTOR, ".react-flow"):
        driver.find_element(By.TAG_NAME, "body").send_keys("g")  # the UI's shortcut: Show Graph
    shot = tmp_path / "ui-graph.png"
    try:
        _until(driver, "graph nodes", lambda d: d.find_elements(By.CSS_SELECTOR, ".react-flow__node"), 90)
        time.sleep(3)  # let the layout settle (fit view)
        labels = driver.find_element(By.CSS_SELECTOR, ".react-flow").text
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    except AssertionError as err:
        console = [entry["message"] for entry in driver.get_log("browser")][-20:]
        raise AssertionError(f"{err}\nbrowser console:\n" + "\n".join(console)) from None
    finally:
        assert driver.save_screenshot(str(shot))
        if os.environ.get("HANDSOFF_SCREENSHOT_DIR"):
            out = Path(os.environ["HANDSOFF_SCREENSHOT_DIR"])
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, out / "ui-graph.png")
    for node in ("source", "build", "alpha", "beta", "rollback_plan", "outcome"):
        assert node in labels, labels
    assert shot.stat().st_size > 10_000
