"""Start and stop a real Apache Kafka (KRaft) on 127.0.0.1: one node, or three for fault tests."""

from __future__ import annotations

import base64
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka.admin import AdminClient

from sagas.devkafka.install import classpath, java_command, resolve_jars
from sagas.errors import KafkaUnavailableError
from sagas.kafka_logs import admin_client_config

_STOP_GRACE_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Node:
    node_id: int
    broker_port: int
    controller_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"


@dataclass
class LocalKafka:
    """A local Kafka cluster of ``nodes`` combined broker+controller processes.

    With three nodes, topics default to replication factor 3 and
    ``min.insync.replicas=2``, so one broker can be killed without losing a write.
    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    nodes: int = 1
    base_port: int | None = None
    data_dir: Path | None = None
    heap: str = "512m"
    _nodes: list[_Node] = field(default_factory=list, init=False, repr=False)
    _owns_data_dir: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.nodes not in (1, 3):
            raise ValueError(f"a local cluster has 1 or 3 nodes, not {self.nodes}")

    @property
    def bootstrap_servers(self) -> str:
        """The ``host:port`` list clients connect to."""
        return ",".join(f"127.0.0.1:{node.broker_port}" for node in self._nodes)

    def start(self, timeout_s: float = 90.0) -> LocalKafka:
        """Resolve the jars if needed, format storage, start every node, wait for the admin API."""
        libs = resolve_jars()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="sagas-kafka-"))
            self._owns_data_dir = True
        self._nodes = self._plan_nodes(self.data_dir)
        cluster_id = random_cluster_id()
        java = java_command()
        cp = classpath(libs)
        log_config = str(resources.files("sagas.devkafka").joinpath("log4j2.yaml"))
        env = {**os.environ, "KAFKA_HEAP_OPTS": f"-Xmx{self.heap}"}
        for node in self._nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            properties = node.data_dir / "server.properties"
            properties.write_text(self._properties(node))
            if not (node.data_dir / "logs" / "meta.properties").exists():
                formatted = subprocess.run(
                    [java, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                     "-c", str(properties), "--ignore-formatted"],
                    capture_output=True, text=True, env=env, check=False,
                )  # fmt: skip
                if formatted.returncode != 0:
                    raise KafkaUnavailableError(
                        f"formatting the storage of Kafka node {node.node_id} failed "
                        f"(exit {formatted.returncode}): {formatted.stderr or formatted.stdout}"
                    )
        for node in self._nodes:
            self._launch(node, java, cp, log_config, env)
        self.wait_ready(timeout_s)
        return self

    def _launch(
        self, node: _Node, java: str, cp: str, log_config: str, env: dict[str, str]
    ) -> None:
        log = node.log_path.open("ab")
        node.process = subprocess.Popen(
            [java, f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
             f"-Dlog4j2.configurationFile={log_config}", "-cp", cp,
             "kafka.Kafka", str(node.data_dir / "server.properties")],
            stdout=log, stderr=subprocess.STDOUT, env=env,
            # A session of its own so a Ctrl-C meant for the caller reaches the broker only
            # through stop(), in order, instead of killing it mid-write.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.close()

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Block until every running broker answers metadata requests."""
        deadline = time.monotonic() + timeout_s
        expected = {n.node_id for n in self._nodes if n.process and n.process.poll() is None}
        last_error: Exception | None = None
        admin: AdminClient | None = None
        while time.monotonic() < deadline:
            for node in self._nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise KafkaUnavailableError(
                        f"Kafka node {node.node_id} exited with {node.process.returncode}; "
                        f"see {node.log_path}:\n{_tail(node.log_path)}"
                    )
            # Ask the admin API only once every listener accepts connections: librdkafka
            # would otherwise log a refused connection every few milliseconds.
            if not all(_listening(n.broker_port) for n in self._nodes if n.node_id in expected):
                time.sleep(0.2)
                continue
            if admin is None:
                admin = AdminClient(
                    admin_client_config(quiet_client_config(self.bootstrap_servers))
                )
            try:
                brokers = set(admin.list_topics(timeout=2).brokers)
                if expected <= brokers:
                    return
            except Exception as exc:  # librdkafka raises KafkaException while starting
                last_error = exc
            time.sleep(0.2)
        raise KafkaUnavailableError(
            f"Kafka at {self.bootstrap_servers} did not answer within {timeout_s:.0f}s "
            f"({last_error}); see {self._nodes[0].log_path}"
        )

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would (fault tests)."""
        node = self._node(node_id)
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait()

    def restart_node(self, node_id: int, timeout_s: float = 90.0) -> None:
        """Start a killed or stopped node again on the same data and ports."""
        node = self._node(node_id)
        log_config = str(resources.files("sagas.devkafka").joinpath("log4j2.yaml"))
        env = {**os.environ, "KAFKA_HEAP_OPTS": f"-Xmx{self.heap}"}
        self._launch(node, java_command(), classpath(resolve_jars()), log_config, env)
        self.wait_ready(timeout_s)

    def pause_node(self, node_id: int) -> None:
        """SIGSTOP one node: it holds its connections but answers nothing (fault tests)."""
        node = self._node(node_id)
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGSTOP)

    def resume_node(self, node_id: int) -> None:
        """SIGCONT a node paused by :meth:`pause_node`."""
        node = self._node(node_id)
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGCONT)

    @property
    def node_ids(self) -> list[int]:
        """The ids of the cluster's nodes, running or not."""
        return [n.node_id for n in self._nodes]

    def node_pids(self) -> list[int]:
        """Process ids of the running nodes, for measuring what the broker costs."""
        return [n.process.pid for n in self._nodes if n.process and n.process.poll() is None]

    def active_controller(self) -> int | None:
        """The node that leads the KRaft metadata quorum, as the running nodes record it.

        Clients cannot ask: in KRaft a broker answers DescribeCluster with any live broker
        as "controller". Each voter writes the quorum's leader and epoch to its
        ``quorum-state`` file; the newest epoch among the running nodes names the leader.
        """
        best: tuple[int, int] | None = None
        for node in self._nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            path = node.data_dir / "logs" / "__cluster_metadata-0" / "quorum-state"
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
            if leader > 0 and (best is None or epoch > best[1]):
                best = (leader, epoch)
        return best[0] if best else None

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL what is still running after a grace period."""
        running = [n for n in self._nodes if n.process is not None and n.process.poll() is None]
        for node in running:
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for node in running:
            assert node.process is not None
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _node(self, node_id: int) -> _Node:
        for node in self._nodes:
            if node.node_id == node_id:
                return node
        raise ValueError(f"no node {node_id}; nodes are {[n.node_id for n in self._nodes]}")

    def _plan_nodes(self, data_dir: Path) -> list[_Node]:
        nodes = []
        for index in range(self.nodes):
            if self.base_port is None:
                broker_port, controller_port = free_port(), free_port()
            else:
                broker_port = self.base_port + 2 * index
                controller_port = broker_port + 1
            node_dir = data_dir / f"node-{index + 1}"
            nodes.append(_Node(index + 1, broker_port, controller_port, node_dir))
        return nodes

    def _properties(self, node: _Node) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self._nodes)
        replication = 3 if self.nodes == 3 else 1
        min_isr = 2 if self.nodes == 3 else 1
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": node.data_dir / "logs",
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            # Fewer internal partitions: the first group or transaction on a fresh broker
            # waits for these to be created, and 50 of each is slow on a laptop.
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.num.partitions": 10,
            # Local development: no reason to wait for more members before a rebalance.
            "group.initial.rebalance.delay.ms": 0,
            # Topics are created by kafka-sagas with their specs; a typo must not create one.
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def _die_with_parent() -> None:
    """In the broker's child process: be killed when the process that started it dies.

    A test run or a command killed outright would otherwise leave its brokers running,
    each holding half a gigabyte and a share of the CPU. Linux only; elsewhere a no-op.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def quiet_client_config(bootstrap_servers: str) -> dict[str, Any]:
    """Client settings whose librdkafka logs stay out of the caller's output.

    librdkafka reports every refused connection while brokers boot or stop; those are
    expected while a local cluster starts, is faulted on purpose, or shuts down.
    """
    logger = logging.getLogger("sagas.devkafka.librdkafka")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return {"bootstrap.servers": bootstrap_servers, "logger": logger}


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding.

    Like Kafka's own ``Uuid.randomUuid()``, an id starting with ``-`` is drawn again: the
    storage tool would read it as an option and refuse to format.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
