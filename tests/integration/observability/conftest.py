"""A real Prometheus scraping a real worker of the example order saga, once per session."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from examples.order_saga import saga
from processors.metrics import PrometheusMetrics
from processors.runner import Role, WorkerRunner, provision
from processors.settings import ProcessorSettings, WorkerSettings
from sagas.config import KafkaSettings
from sagas.engine.versions import SagaVersions, compile_versions

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "rules"
LAG_ALERT_TEST_THRESHOLD_S = 3
"""The lag alert's threshold in the test rules: a backlog this old builds in seconds."""


@dataclass
class ObservedWorker:
    """The order saga's processor and step worker, their metrics on one HTTP port."""

    kafka: KafkaSettings
    versions: SagaVersions
    metrics: PrometheusMetrics
    metrics_port: int
    state_dir: Path
    processor: WorkerRunner
    steps: WorkerRunner | None = None
    stopped: list[WorkerRunner] = field(default_factory=list)

    def start_steps(self) -> WorkerRunner:
        """Start a step worker for every queue of the saga (50 ms dispatch objective)."""
        self.steps = WorkerRunner(
            self.versions,
            self.kafka,
            role=Role.STEPS,
            worker_settings=WorkerSettings(dispatch_objective_ms=50),
            metrics=self.metrics,
        ).start()
        self.steps.wait_ready()
        return self.steps

    def stop_steps(self) -> None:
        """Stop the step worker: commands pile up in the queues' topics."""
        assert self.steps is not None
        self.steps.stop()
        self.stopped.append(self.steps)
        self.steps = None


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def derive_test_rules(shipped: str) -> str:
    """The shipped rules with a lag threshold of seconds and no ``for`` delays."""
    derived = re.sub(r"\bfor: \d+m\b", "for: 0s", shipped)
    derived = derived.replace(
        "consumer_lag_seconds:max > 60", f"consumer_lag_seconds:max > {LAG_ALERT_TEST_THRESHOLD_S}"
    )
    assert derived.count("for: 0s") >= 4
    assert f"> {LAG_ALERT_TEST_THRESHOLD_S}\n" in derived
    return derived


@pytest.fixture(scope="session")
def observed_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObservedWorker]:
    """A processor (publishing every group's lag each second) and a step worker."""
    state_dir = tmp_path_factory.mktemp("observed-state")
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topic_prefix=f"obs-{time.time_ns() % 10**12}."
    )
    versions = compile_versions(saga)
    provision(versions, kafka)
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    processor = WorkerRunner(
        versions,
        kafka,
        role=Role.PROCESSOR,
        processor_settings=ProcessorSettings(state_dir=state_dir),
        metrics=metrics,
        lag_interval=timedelta(seconds=1),
    ).start()
    observed = ObservedWorker(kafka, versions, metrics, server.server_port, state_dir, processor)
    try:
        processor.wait_ready()
        observed.start_steps()
        yield observed
    finally:
        for runner in (processor, observed.steps):
            if runner is not None:
                runner.stop()
        server.shutdown()
        server.server_close()
        thread.join(10)
    processor.raise_errors()


@dataclass(frozen=True)
class PrometheusServer:
    """A Prometheus on 127.0.0.1, queried through its HTTP API."""

    url: str

    def get(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful API answer; fails the test on an error answer."""
        import json
        import urllib.parse

        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``check`` until it holds; fail naming ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                targets = [
                    (t["scrapeUrl"], t["health"], t["lastError"])
                    for t in self.get("/api/v1/targets")["activeTargets"]
                ]
                pytest.fail(f"{what} within {timeout_s:g} s (scrape targets: {targets})")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def prometheus(
    observed_worker: ObservedWorker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    """Debian's Prometheus scraping the observed worker every second, with the test rules."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run scripts/bootstrap (Debian package prometheus)")
    home = tmp_path_factory.mktemp("prometheus")
    (home / "rules.yml").write_text(
        derive_test_rules((RULES / "kafka-sagas.rules.yml").read_text())
    )
    (home / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n  - job_name: worker\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{observed_worker.metrics_port}']\n"
    )
    port = free_port()
    log = (home / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = PrometheusServer(f"http://127.0.0.1:{port}")

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited: {(home / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        server.wait_for("prometheus became ready", ready, 30)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
