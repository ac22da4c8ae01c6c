"""The dashboard in a real headless Chromium, against the real broker and real workflows.

A processor and step worker of the shop saga run in this process: some workflows
complete, one is compensated, one waits for a signal, one is dead-lettered (a start for
version 2 while only version 1 is deployed). Then version 2 is deployed, and
``sagas dashboard`` is started as users start it, with a token; every page is opened in
the browser and what it shows is checked against what the log holds.

With ``SAGAS_SCREENSHOT_DIR`` set, each page is also saved there as a PNG
(``scripts/screenshots`` writes those of ``docs/``). The tests share one run of the
shop and go in file order: the later ones redrive, cancel and start workflows.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from processors.metrics import PrometheusMetrics
from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.client.dead_letters import read_dead_letters
from sagas.client.history import read_history
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions
from sagas.events import WorkflowStatus
from tests.integration.dashboard import shop_saga
from tests.integration.dashboard.browser import chromium
from tests.integration.dashboard.prometheus_server import free_port, prometheus
from topics.naming import TopicNames

SAGA = shop_saga.SAGA_NAME
TOKEN = "open-sesame-7f3a"
COMPLETED = [f"order-ok-{i}" for i in range(1, 7)]
COMPENSATED = "order-big-1"
WAITING = "order-wait-1"
PAGE_SIZE = 5
REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(420)


@dataclass
class Shop:
    """Everything the page tests look at: the settings, the dashboard's address, the ids."""

    kafka: KafkaSettings
    client: SagaClient
    url: str
    dead_lettered: str
    """The workflow whose dead-lettered start is redriven."""
    given_up: str
    """The workflow whose dead-lettered start is discarded."""


def _runner(
    versions: SagaVersions, kafka: KafkaSettings, state_dir: Path, metrics: PrometheusMetrics
) -> WorkerRunner:
    settings = ProcessorSettings(state_dir=state_dir)
    runner = WorkerRunner(versions, kafka, processor_settings=settings, metrics=metrics)
    runner.start().wait_ready()
    return runner


def _wait(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def _start_dashboard(kafka: KafkaSettings, *extra: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "SAGAS_DASHBOARD_TOKEN": TOKEN}
    command = [
        sys.executable, "-m", "sagas.cli", "dashboard",
        "tests.integration.dashboard.shop_saga:both",
        "tests.integration.dashboard.shop_saga:unprovisioned",
        "--port", "0", "--page-size", str(PAGE_SIZE),
        "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix,
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stream = process.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert process.poll() is None, f"the dashboard exited: {''.join(seen)}"
            continue
        seen.append(line)
        found = re.search(r"at (http://\S+)/$", line.strip())
        if found:
            return process, found.group(1)
    process.kill()
    raise AssertionError(f"the dashboard did not start: {''.join(seen)}")


@pytest.fixture(scope="module")
def shop(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"dash-{uuid.uuid4().hex[:8]}."
    )
    both = compile_versions(shop_saga.both)
    provision(both, kafka)
    state = tmp_path_factory.mktemp("dashboard-state")
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics_port = free_port()
    server, _ = start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    with contextlib.ExitStack() as stack:
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        prometheus_url = stack.enter_context(prometheus(f"127.0.0.1:{metrics_port}", state))
        yield from _run_shop(kafka, both, state, metrics, prometheus_url)


def _run_shop(
    kafka: KafkaSettings, both: SagaVersions, state: Path, metrics: PrometheusMetrics,
    prometheus_url: str,
) -> Iterator[Shop]:  # fmt: skip
    client = SagaClient(kafka)
    old = _runner(compile_versions(shop_saga.v1), kafka, state / "v1", metrics)
    try:
        for wid in COMPLETED:
            client.start(SAGA, {"order_id": wid, "amount_cents": 500}, workflow_id=wid)
            client.signal(SAGA, wid, "approve", {"by": "ops"}, check=False)
        client.start(SAGA, {"order_id": "big", "amount_cents": 5000}, workflow_id=COMPENSATED)
        client.signal(SAGA, COMPENSATED, "approve", {"by": "ops"}, check=False)
        client.start(SAGA, {"order_id": "wait", "amount_cents": 100}, workflow_id=WAITING)
        ahead = client.start(SAGA, {"order_id": "v2", "amount_cents": 1}, version=2,
                             workflow_id="order-v2-1")  # fmt: skip
        given_up = client.start(SAGA, {"order_id": "v2b", "amount_cents": 2}, version=2,
                                workflow_id="order-v2-2")  # fmt: skip
        for wid in [*COMPLETED, COMPENSATED]:
            client.result(SAGA, wid, timeout=90)
        _wait(lambda: len(read_dead_letters(kafka, SAGA)) == 2, "dead-lettering the v2 starts")
    finally:
        old.stop()
    old.raise_errors()
    new = _runner(both, kafka, state / "v2", metrics)
    process, url = _start_dashboard(kafka, "--prometheus-url", prometheus_url)
    try:
        yield Shop(kafka, client, url, ahead, given_up)
    finally:
        process.terminate()
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()
        new.stop()
        client.close()
    new.raise_errors()


@pytest.fixture(scope="module")
def browser(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        driver.get(f"{shop.url}/login")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        WebDriverWait(driver, 30).until(lambda d: d.current_url.endswith("/workflows"))
        yield driver
    finally:
        driver.quit()


def _open(driver: WebDriver, url: str) -> None:
    driver.get(url)
    assert "Traceback" not in driver.page_source


def _shot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("SAGAS_SCREENSHOT_DIR")
    if folder:
        # The whole page, not only the window: Chromium renders beyond the viewport.
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True,
             "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}},
        )  # fmt: skip
        (Path(folder) / f"dashboard-{name}.png").write_bytes(base64.b64decode(shot["data"]))


def _rows(driver: WebDriver, table: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")


def _statuses(driver: WebDriver) -> dict[str, str]:
    return {
        row.get_attribute("data-workflow") or "": row.find_element(By.CSS_SELECTOR, ".status").text
        for row in _rows(driver, "workflows")
    }


def test_workflows_are_counted_by_status_listed_and_paged(shop: Shop, browser: WebDriver) -> None:
    _open(browser, f"{shop.url}/workflows?saga={SAGA}")
    _shot(browser, "workflows")
    counts = browser.find_element(By.CSS_SELECTOR, f'#counts tr[data-saga="{SAGA}"]')
    cell = {
        td.get_attribute("data-status"): td.text
        for td in counts.find_elements(By.CSS_SELECTOR, "td[data-status]")
    }
    assert cell["COMPLETED"] == str(len(COMPLETED))
    assert cell["COMPENSATED"] == "1"
    assert cell["RUNNING"] == "1"
    first = _statuses(browser)
    assert len(first) == PAGE_SIZE
    browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
    second = _statuses(browser)
    assert set(first).isdisjoint(second)
    everything = first | second
    assert {wid for wid, s in everything.items() if s == "COMPLETED"} == set(COMPLETED)
    assert everything[COMPENSATED] == "COMPENSATED"
    assert everything[WAITING] == "RUNNING"


def test_search_by_id_and_by_status(shop: Shop, browser: WebDriver) -> None:
    _open(browser, f"{shop.url}/workflows?saga={SAGA}")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("big")
    box.submit()
    WebDriverWait(browser, 30).until(lambda d: "q=big" in d.current_url)
    assert _statuses(browser) == {COMPENSATED: "COMPENSATED"}
    _open(browser, f"{shop.url}/workflows?saga={SAGA}&status=COMPLETED")
    completed = _statuses(browser)
    assert len(completed) == PAGE_SIZE
    assert set(completed.values()) == {"COMPLETED"}


def test_history_shows_every_event_in_log_order(shop: Shop, browser: WebDriver) -> None:
    _open(browser, f"{shop.url}/workflows/{SAGA}/{COMPENSATED}")
    _shot(browser, "history")
    shown = [
        li.get_attribute("data-type")
        for li in browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    ]
    logged = [e.type.value for e in read_history(shop.kafka, SAGA, COMPENSATED)]
    assert shown == logged
    # The story the saga tells: a reserve, a timer, a signal, a retried then failed charge,
    # and the reserve released.
    story = ["started", "step_scheduled", "step_succeeded", "timer_started", "timer_fired",
             "step_failed", "retry_scheduled", "step_failed",
             "compensation_scheduled", "compensation_succeeded", "compensated"]  # fmt: skip
    remaining = iter(shown)
    assert all(kind in remaining for kind in story), shown
    assert "signal_received" in shown  # sent right after the start, it lands early
    assert browser.find_element(By.ID, "status").text == "COMPENSATED"
    steps = {
        row.find_elements(By.TAG_NAME, "td")[0].text: [
            td.text for td in row.find_elements(By.TAG_NAME, "td")
        ]
        for row in _rows(browser, "steps")
    }
    assert steps["charge"][1:3] == ["2", "failed"]
    assert steps["reserve"][1:4] == ["1", "succeeded", "compensated"]
    assert browser.find_elements(By.CSS_SELECTOR, ".actions a") == []  # an ended workflow


def test_lag_rows_for_the_processor_and_the_step_workers(shop: Shop, browser: WebDriver) -> None:
    names = TopicNames(SAGA, shop.kafka.topic_prefix)
    _open(browser, f"{shop.url}/lag")
    _shot(browser, "lag")
    rows = {
        (row.get_attribute("data-group"), int(row.get_attribute("data-partition") or -1)): row
        for row in _rows(browser, "lag")
    }
    groups = {group for group, _ in rows}
    assert {names.processor_group, names.worker_group()} <= groups
    processor = [r for (g, _), r in rows.items() if g == names.processor_group]
    assert len(processor) == 3  # the events topic's partitions
    for row in processor:
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[1] == names.events
        assert int(cells[5]) >= 0
        assert cells[6] == "—"  # seconds are not measured, and the page does not pretend
    # The saga without topics shows Kafka's answer, not a trace.
    assert "dash_nowhere" in browser.find_element(By.ID, "error").text


def _letter_of(driver: WebDriver, workflow_id: str) -> WebElement:
    rows = [
        row
        for row in _rows(driver, "letters")
        if row.find_elements(By.TAG_NAME, "td")[1].text == workflow_id
    ]
    assert len(rows) == 1, f"{len(rows)} DLQ rows for {workflow_id}"
    return rows[0]


def _confirmed(browser: WebDriver) -> str:
    """The text of the page a confirmation led to, once the browser has loaded it: the
    click returns before the form's answer arrives."""
    done = WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "done"))
    return str(done[0].text)


def test_a_dead_letter_is_redriven_through_its_confirmation(shop: Shop, browser: WebDriver) -> None:
    _open(browser, f"{shop.url}/dlq?saga={SAGA}")
    _shot(browser, "dlq")
    assert len(_rows(browser, "letters")) == 2
    letter = _letter_of(browser, shop.dead_lettered)
    cells = [td.text for td in letter.find_elements(By.TAG_NAME, "td")]
    assert cells[2] == "unknown_version"
    assert "version 2" in cells[3]
    assert cells[5] == "dead"
    letter.find_element(By.LINK_TEXT, "Redrive…").click()
    confirm = browser.find_element(By.ID, "confirm")
    assert "Redrive the dead-lettered record" in confirm.text
    _shot(browser, "confirm")
    # Nothing happens before the confirmation: the workflow is still parked.
    assert (
        shop.client.statuses(SAGA).get(shop.dead_lettered) is None
        or not shop.client.status(SAGA, shop.dead_lettered).status.is_final
    )
    browser.find_element(By.ID, "confirm-button").click()
    assert "Redrove 1 record(s)" in _confirmed(browser)
    record = shop.client.result(SAGA, shop.dead_lettered, timeout=60)
    assert record.status is WorkflowStatus.COMPLETED
    assert record.version == 2
    _open(browser, f"{shop.url}/workflows?saga={SAGA}&q={shop.dead_lettered}")
    assert _statuses(browser) == {shop.dead_lettered: "COMPLETED"}
    # The redriven record stays listed, settled: it offers no second redrive.
    _open(browser, f"{shop.url}/dlq?saga={SAGA}")
    letter = _letter_of(browser, shop.dead_lettered)
    assert letter.find_element(By.CLASS_NAME, "state").text == "redriven"
    assert letter.find_elements(By.LINK_TEXT, "Redrive…") == []


def test_a_dead_letter_is_discarded_through_its_confirmation(
    shop: Shop, browser: WebDriver
) -> None:
    _open(browser, f"{shop.url}/dlq?saga={SAGA}")
    _letter_of(browser, shop.given_up).find_element(By.LINK_TEXT, "Discard…").click()
    assert "Discard" in browser.find_element(By.ID, "confirm").text
    browser.find_element(By.ID, "confirm-button").click()
    assert "Discarded the record" in _confirmed(browser)
    # Settled for good: marked in the DLQ, and its start never runs.
    letters = {letter.workflow_id: letter for letter in read_dead_letters(shop.kafka, SAGA)}
    assert letters[shop.given_up].state.value == "discarded"
    _open(browser, f"{shop.url}/dlq?saga={SAGA}")
    letter = _letter_of(browser, shop.given_up)
    assert letter.find_element(By.CLASS_NAME, "state").text == "discarded"
    assert letter.find_elements(By.LINK_TEXT, "Discard…") == []
    assert shop.given_up not in shop.client.statuses(SAGA)


def test_a_waiting_workflow_is_cancelled_through_its_confirmation(
    shop: Shop, browser: WebDriver
) -> None:
    _open(browser, f"{shop.url}/workflows/{SAGA}/{WAITING}")
    assert browser.find_element(By.ID, "status").text == "RUNNING"
    browser.find_element(By.LINK_TEXT, "Cancel…").click()
    assert "Cancel workflow" in browser.find_element(By.ID, "confirm").text
    browser.find_element(By.ID, "reason").send_keys("customer changed their mind")
    browser.find_element(By.ID, "confirm-button").click()
    assert "cancel" in _confirmed(browser)
    record = shop.client.result(SAGA, WAITING, timeout=60)
    assert record.status is WorkflowStatus.CANCELLED
    events = read_history(shop.kafka, SAGA, WAITING)
    requested = [e for e in events if e.type.value == "cancel_requested"]
    assert requested
    assert requested[0].error is not None
    assert requested[0].error.message == "customer changed their mind"


def test_the_slo_panel_shows_dispatch_latency_from_prometheus(
    shop: Shop, browser: WebDriver
) -> None:
    def panel(driver: WebDriver) -> tuple[list[list[str]], set[str]] | None:
        driver.refresh()
        dispatch = [
            [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for row in _rows(driver, "dispatch")
            if not row.find_elements(By.CSS_SELECTOR, "td.empty")
        ]
        steps = {
            row.find_elements(By.TAG_NAME, "td")[1].text
            for row in _rows(driver, "step-durations")
            if not row.find_elements(By.CSS_SELECTOR, "td.empty")
        }
        return (dispatch, steps) if len(dispatch) >= 2 and {"reserve", "charge"} <= steps else None

    # A series' first scrape is its baseline, so rates count only what happens after it:
    # run two more workflows now that every series has been scraped.
    time.sleep(2)
    for wid in ("order-slo-1", "order-slo-2"):
        shop.client.start(SAGA, {"order_id": wid, "amount_cents": 10}, workflow_id=wid, version=1)
        shop.client.signal(SAGA, wid, "approve", {"by": "ops"}, check=False)
    for wid in ("order-slo-1", "order-slo-2"):
        assert shop.client.result(SAGA, wid, timeout=60).status is WorkflowStatus.COMPLETED
    _open(browser, f"{shop.url}/slo")
    # Prometheus scrapes every second; a rate needs two scrapes after the workflows ran.
    rows, steps = WebDriverWait(browser, 60, poll_frequency=1).until(panel)
    _shot(browser, "slo")
    assert {row[0] for row in rows} == {SAGA}
    assert {row[1] for row in rows} == {"reserve", "charge"}  # dispatch latency per step
    for row in rows:
        p50, p99 = (float(cell.removesuffix(" ms")) for cell in row[2:4])
        assert 0 < p50 <= p99
        assert row[4] in {"met", "missed"}
    assert steps == {"reserve", "charge"}


def test_a_saga_whose_topics_are_missing_shows_the_error(shop: Shop, browser: WebDriver) -> None:
    _open(browser, f"{shop.url}/workflows?saga=dash_nowhere")
    error = browser.find_element(By.ID, "error").text
    assert "does not exist" in error
    assert "\n" not in error


def _status_of(url: str, data: bytes | None = None, token: str | None = None) -> int:
    request = urllib.request.Request(url, data=data)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the response open
            return exc.code


def test_requests_without_the_token_are_refused(shop: Shop, browser: WebDriver) -> None:
    form = urllib.parse.urlencode(
        {"saga": SAGA, "workflow": COMPLETED[0], "confirm": "yes", "reason": "x"}
    ).encode()
    assert _status_of(f"{shop.url}/workflows") == 403
    assert _status_of(f"{shop.url}/dlq", token="wrong") == 403
    assert _status_of(f"{shop.url}/actions/terminate", data=form) == 403
    assert _status_of(f"{shop.url}/workflows", token=TOKEN) == 200
    # With the token but without the form key of a confirmation page: refused too.
    assert _status_of(f"{shop.url}/actions/terminate", data=form, token=TOKEN) == 403
    assert shop.client.status(SAGA, COMPLETED[0]).status is WorkflowStatus.COMPLETED
