"""``sagas worker``: run a saga's processor and step workers."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
from datetime import timedelta
from pathlib import Path

import click

from sagas.cli.loading import bootstrap_option, load_saga, prefix_option, reachable_kafka
from sagas.cli.log_setup import configure_logging, log_format_option, log_level_option
from sagas.cli.stopping import stop_on_signals

log = logging.getLogger("sagas.worker")


@click.command()
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@click.option(
    "--role",
    type=click.Choice(["all", "processor", "steps"]),
    default="all",
    show_default=True,
    help="Run the saga processor, the step worker, or both.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Serve only these queues (default: every queue of the saga).",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".sagas-state"),
    show_default=True,
    help="Where the processor keeps its RocksDB state.",
)
@click.option(
    "--store",
    type=click.Choice(["rocksdb", "memory"]),
    default="rocksdb",
    show_default=True,
    help="State backend of the saga processor.",
)
@click.option(
    "--instance-id",
    default=None,
    help="Stable id of this process across restarts (fences its old transactions).",
)
@click.option(
    "--metrics-port",
    type=int,
    envvar="SAGAS_METRICS_PORT",
    default=None,
    help="Serve Prometheus metrics, /healthz and /readyz on this port [env SAGAS_METRICS_PORT].",
)
@click.option(
    "--health-port",
    type=int,
    envvar="SAGAS_HEALTH_PORT",
    default=None,
    help="Serve /healthz and /readyz on this port, without --metrics-port [env SAGAS_HEALTH_PORT].",
)
@click.option(
    "--dispatch-objective-ms",
    type=click.IntRange(min=1),
    envvar="SAGAS_DISPATCH_OBJECTIVE_MS",
    default=None,
    help="Dispatch objective (p99, ms) of every step served here, over the saga's own"
    " [env SAGAS_DISPATCH_OBJECTIVE_MS].",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that run executor='process' steps (default: one per core).",
)
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing topics at start.",
)
@click.option(
    "--allow-missing-versions",
    is_flag=True,
    default=False,
    help="Start even if workflows are in flight on saga versions this worker lacks.",
)
@click.option(
    "--query-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the processor's query endpoint binds (beyond 127.0.0.1 a token is required).",
)
@click.option(
    "--query-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the query endpoint (0: any free port; it is announced either way).",
)
@click.option(
    "--advertised-address",
    default=None,
    help="host:port clients reach the query endpoint at, when not the bound one.",
)
@click.option(
    "--query-token",
    envvar="SAGAS_QUERY_TOKEN",
    default=None,
    help="Bearer token query requests must carry [env SAGAS_QUERY_TOKEN].",
)
@click.option(
    "--retention",
    type=click.IntRange(min=1),
    default=None,
    help="Keep ended workflows this many seconds, then remove their state, index entries"
    " and status records (overrides the saga's own retention).",
)
@log_level_option
@log_format_option
@bootstrap_option
@prefix_option
def worker(
    saga_ref: str, role: str, queues: tuple[str, ...], state_dir: Path, store: str,
    instance_id: str | None, metrics_port: int | None, health_port: int | None,
    dispatch_objective_ms: int | None, processes: int | None, create_topics: bool,
    allow_missing_versions: bool,
    query_host: str, query_port: int, advertised_address: str | None,
    query_token: str | None, retention: int | None, log_level: str, log_format: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Run the saga processor and/or step worker of MODULE:SAGA until Ctrl-C or SIGTERM.

    \b
    MODULE, or MODULE:SAGA naming one saga of it, serves every version of that saga
    the module declares (module-level sagas of that name, and those in module-level
    lists or tuples), each workflow on the version it started with; new workflows
    start on the newest. MODULE:LIST serves exactly the versions in the list.
    """
    from prometheus_client import CollectorRegistry

    from processors.broker_watch import BrokerWatch
    from processors.health_server import serve_health
    from processors.metrics import Metrics, PrometheusMetrics
    from processors.query_endpoint import QuerySettings
    from processors.runner import Role, WorkerRunner, provision
    from processors.settings import ProcessorSettings, WorkerSettings
    from processors.version_check import MissingVersionsError, check_versions

    configure_logging(log_level, log_format)
    # A native crash (an assertion inside librdkafka or its binding) ends the process
    # with no Python trace; this prints every thread's stack to stderr first, so the
    # log of a worker that died that way names the call it was in.
    with contextlib.suppress(OSError, ValueError):  # a stderr with no file (captured)
        faulthandler.enable(all_threads=True)
    if metrics_port is not None and health_port is not None:
        raise click.UsageError("--metrics-port serves the health endpoints too: choose one")
    versions = load_saga(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    metrics: Metrics = Metrics()
    registry: CollectorRegistry | None = None
    if metrics_port is not None:
        registry = CollectorRegistry()
        metrics = PrometheusMetrics(registry)
    if create_topics:
        provision(versions, kafka)
    try:
        check_versions(versions, kafka)
    except MissingVersionsError as exc:
        if not allow_missing_versions:
            raise
        log.warning("%s", exc)
    runner = WorkerRunner(
        versions,
        kafka,
        role=Role(role),
        queues=queues or None,
        processor_settings=ProcessorSettings(
            state_dir=state_dir,
            store="memory" if store == "memory" else "rocksdb",
            instance_id=instance_id,
            retention=timedelta(seconds=retention) if retention is not None else None,
        ),
        query_settings=QuerySettings(
            host=query_host,
            port=query_port,
            advertised_address=advertised_address,
            token=query_token,
        ),
        worker_settings=WorkerSettings(
            instance_id=instance_id,
            state_dir=state_dir,
            dispatch_objective_ms=dispatch_objective_ms,
            processes=processes,
        ),
        metrics=metrics,
        lag_interval=timedelta(seconds=5) if metrics_port is not None else None,
    ).start()
    watch = BrokerWatch(kafka).start()
    parts = [part for part in (runner.processor, runner.worker) if part is not None]

    def healthy() -> str | None:
        if not runner.alive:
            return "a part of the worker stopped"
        if not watch.reachable:
            return f"cannot reach Kafka at {kafka.bootstrap_servers}"
        return None

    def ready() -> str | None:
        problem = healthy()
        if problem is None and not all(part.ready.is_set() for part in parts):
            return "waiting for partitions"
        return problem

    port = metrics_port if metrics_port is not None else health_port
    server = None
    if port is not None:
        try:
            server = serve_health(port, healthy, ready, registry)
        except OSError as exc:
            runner.stop()
            watch.stop()
            raise click.ClickException(f"cannot serve /healthz on port {port}: {exc}") from exc
    stop = stop_on_signals()
    versions_text = ", ".join(str(v) for v in sorted(versions.plans))
    log.info(
        "starting saga %r (versions %s) as %s; waiting for partitions",
        versions.name, versions_text, role,
    )  # fmt: skip
    announced = False
    while not stop.wait(0.5):
        if not runner.alive:
            break
        if not announced and all(part.ready.is_set() for part in parts):
            log.info("ready: partitions assigned and restored")
            announced = True
    log.info("stopping")
    runner.stop()
    watch.stop()
    if server is not None:
        server.shutdown()
    runner.raise_errors()
