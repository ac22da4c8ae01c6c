"""One chaos run: the chaos trip saga and the insurance saga it starts as a child, on a
three-broker cluster while nemeses act, one kind at a time and then combined; then every
topic of both is read back and verified."""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from processors.runner import provision
from processors.saga_processor import OFFSETS_CALL_LIMIT_S
from processors.settings import ProcessorSettings
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka
from sagas.devkafka.cluster import quiet_client_config
from sagas.engine.versions import compile_versions
from sagas.events import Event
from sagas.kafka_logs import LOGGER_NAME as LIBRDKAFKA_LOGGER
from schemas import EventCodec
from tests.chaos import chaos_saga
from tests.chaos.fleet import (
    ROLES,
    Fleet,
    Progress,
    pause,
    resume,
    wait_replicated,
    wait_settled,
)
from tests.chaos.poison import poison_records
from tests.chaos.verifier import DeadLetter, Offsets, RunRecord, Verdict, verify
from tests.integration.long_running.worker_process import WorkerProcess
from tests.integration.participants import ledger
from tests.integration.processors.saga_run_checks import read_topic
from topics.client_configs import producer_config
from topics.naming import TopicNames, command_topic, worker_group

NETWORK_SKIPPED = (
    "network nemesis skipped: tc netem needs the sch_netem kernel module, which this kernel"
    " lacks ('Specified qdisc kind is unknown'), and no iptables/nft is installed; netem on"
    " lo would also slow every other process of the machine. A paused broker (SIGSTOP)"
    " stands in for a partitioned one."
)


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """How big a run is and which nemeses act."""

    start_rate: float
    """Workflows started per second while the nemeses act."""
    nemeses: tuple[str, ...]
    bounce_rounds: int
    kills: int
    poison: int
    delay_ms: int = 20
    terminal_bound_s: float = 120.0


SHORT = ChaosConfig(
    start_rate=3.0,
    nemeses=("leader_kill", "process_kill", "scale", "pause_member"),
    bounce_rounds=1,
    kills=3,
    poison=20,
)
FULL = ChaosConfig(
    start_rate=4.0,
    nemeses=(
        "leader_kill",
        "broker_bounce",
        "controller_kill",
        "broker_pause",
        "process_kill",
        "scale",
        "graceful_stop",
        "redeploy",
        "pause_member",
        "combined",
    ),
    bounce_rounds=5,
    kills=8,
    poison=200,
)


@dataclass
class Fault:
    """One injected fault: when, and how long until the groups and the saga recovered."""

    kind: str
    detail: str
    recover_s: float | None
    """From the injection until every group is stable on live members and work went on."""
    stall_s: float
    """The longest time the saga made no progress, from the injection to the recovery."""


TRANSACTION_TIMEOUT_S = ProcessorSettings().transaction_timeout.total_seconds()
"""The processors' transaction timeout (the fleet runs with the default settings)."""


@dataclass
class Context:
    """What the nemeses act on."""

    cluster: LocalKafka
    kafka: KafkaSettings
    fleet: Fleet
    progress: Progress
    admin: AdminClient
    names: TopicNames
    groups: dict[str, int]
    config: ChaosConfig
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    zombies_exited: list[str] = field(default_factory=list)
    settle_until: float = 0.0
    """Until when a broker fault may still surface in the members (monotonic clock)."""

    def broker_back(self) -> None:
        """Note that a faulted broker is back. A transaction that was open across the fault
        can still fail until the broker aborts it (the transaction timeout), or a member
        give up on adding offsets to it when librdkafka left that call hung, and then start
        over: the fault is not over before that."""
        self.settle_until = time.monotonic() + max(TRANSACTION_TIMEOUT_S, OFFSETS_CALL_LIMIT_S) + 3

    def wait_until_settled(self) -> None:
        """Sleep until the last broker fault can no longer surface (see :meth:`broker_back`)."""
        time.sleep(max(0.0, self.settle_until - time.monotonic()))

    def fresh_admin(self) -> AdminClient:
        """A new admin client: one kept across a broker kill can go on asking the dead
        broker for the groups' coordinator (librdkafka caches it), and never see them
        settle."""
        return AdminClient(quiet_client_config(self.kafka.bootstrap_servers))

    def record(
        self,
        kind: str,
        detail: str,
        began: float,
        undone: float | None = None,
        *,
        survived: bool = False,
    ) -> Fault:
        """Wait for the recovery and log the fault.

        Recovery counts from ``undone`` (a broker restarted, a process resumed) when the
        fault lasts a while, else from the injection: until every group is stable on live
        members with all partitions assigned, and the saga made progress after that. A
        fault the cluster must ride out while it lasts (``survived``: a partition leader
        killed, which another replica replaces) counts from the injection until the end of
        the longest stall it caused.
        """
        base = began if undone is None else undone
        settled = wait_settled(self.fresh_admin(), self.groups, self.fleet, timeout=90)
        settled_at = time.monotonic()
        advanced = self.progress.wait_for_advance(base, timeout=90)
        recover = None
        if settled is not None and advanced is not None:
            recover = max(settled_at - base, advanced - base)
            if survived:
                recover = self.progress.stall_end(began, time.monotonic()) - began
        end = time.monotonic()
        fault = Fault(kind, detail, recover, self.progress.longest_stall(began, end))
        self.faults.append(fault)
        print(
            f"  {kind:16} {detail:58} recover {_fmt(recover)} stall {fault.stall_s:.1f}s",
            flush=True,
        )
        return fault


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def _leader(ctx: Context, partition: int = 0) -> int:
    topic = ctx.names.events
    metadata = ctx.fresh_admin().list_topics(topic, timeout=30)
    return int(metadata.topics[topic].partitions[partition].leader)


def leader_kill(ctx: Context) -> None:
    leader = _leader(ctx)
    began = time.monotonic()
    ctx.cluster.kill_node(leader)
    time.sleep(6)
    ctx.cluster.restart_node(leader)
    ctx.broker_back()
    # The longest stall it caused is looked for until its last consequence could show.
    ctx.wait_until_settled()
    ctx.record(
        "leader_kill", f"kill -9 broker {leader} (events[0] leader), 6 s", began, survived=True
    )


def broker_bounce(ctx: Context) -> None:
    for round_ in range(ctx.config.bounce_rounds):
        for node in ctx.cluster.node_ids:
            began = time.monotonic()
            ctx.cluster.kill_node(node)
            time.sleep(2)
            ctx.cluster.restart_node(node)
            ctx.broker_back()
            ctx.record(
                "broker_bounce", f"round {round_ + 1}: broker {node}", began, time.monotonic()
            )


def controller_kill(ctx: Context) -> None:
    controller = ctx.cluster.active_controller()
    if controller is None:
        ctx.notes.append("controller_kill skipped: no quorum-state file named a leader")
        return
    began = time.monotonic()
    ctx.cluster.kill_node(controller)
    time.sleep(5)
    ctx.cluster.restart_node(controller)
    ctx.broker_back()
    ctx.record(
        "controller_kill", f"kill -9 active controller {controller}", began, time.monotonic()
    )


def broker_pause(ctx: Context) -> None:
    leader = _leader(ctx, 1)
    began = time.monotonic()
    ctx.cluster.pause_node(leader)
    time.sleep(8)
    ctx.cluster.resume_node(leader)
    ctx.broker_back()
    ctx.record("broker_pause", f"SIGSTOP broker {leader} for 8 s", began, time.monotonic())


def process_kill(ctx: Context) -> None:
    rng = random.Random(7)
    for n in range(ctx.config.kills):
        role = rng.choice(tuple(ROLES))
        restart = n % 2 == 0
        began = time.monotonic()
        ctx.fleet.kill_one(role, restart=restart)
        how = "restarted under its id" if restart else "replaced under a new id"
        ctx.record("sigkill_restart" if restart else "sigkill_for_good", f"{role}, {how}", began)
        time.sleep(2)


def scale(ctx: Context) -> None:
    for role in ROLES:
        # The child saga's members a shorter round, to keep the short run short.
        for count in (3, 2, 1, 2) if not role.startswith("child") else (2, 1):
            before = len(ctx.fleet.members[role])
            began = time.monotonic()
            ctx.fleet.scale(role, count)
            ctx.record("scale", f"{role} {before} -> {count}", began)


def graceful_stop(ctx: Context) -> None:
    for role in ROLES:
        ctx.fleet.add(role)
        wait_settled(ctx.fresh_admin(), ctx.groups, ctx.fleet, timeout=60)
        began = time.monotonic()
        ctx.fleet.stop_one(role)
        ctx.record("graceful_stop", f"{role}: SIGTERM one member", began)


def redeploy(ctx: Context) -> None:
    """Blue/green: new members under new ids start, then the old ones stop."""
    old = {role: len(ctx.fleet.members[role]) for role in ctx.fleet.members}
    began = time.monotonic()
    for role, count in old.items():
        for _ in range(count):
            ctx.fleet.add(role)
    for role, count in old.items():
        for _ in range(count):
            ctx.fleet.stop_one(role)
    ctx.record("redeploy", f"{sum(old.values())} members replaced under new ids", began)


def pause_member(ctx: Context) -> None:
    """Zombies: SIGSTOP a trip processor and a child saga processor past their session
    timeout, then SIGCONT them."""
    victims: dict[str, WorkerProcess] = {}
    for role in ("processor", "child_processor"):
        if len(ctx.fleet.members[role]) < 2:
            ctx.fleet.add(role)
    wait_settled(ctx.fresh_admin(), ctx.groups, ctx.fleet, timeout=60)
    began = time.monotonic()
    for role in ("processor", "child_processor"):
        victims[role] = victim = ctx.fleet.members[role][0]
        pause(victim)
        # The others take its partitions after the session timeout; it holds its open
        # transaction meanwhile, which must never become visible.
        ctx.fleet.members[role].remove(victim)
    paused = " and ".join(v.instance_id or "" for v in victims.values())
    fault = ctx.record("pause_member", f"SIGSTOP {paused} 15 s, SIGCONT", began)
    time.sleep(max(0.0, 15 - (time.monotonic() - began)))
    for victim in victims.values():
        resume(victim)
    time.sleep(3)
    # A resumed zombie finds its transaction timed out and its producer fenced; it must
    # start over as a fresh member under its id, not exit.
    for role, victim in victims.items():
        if victim.running:
            ctx.fleet.members[role].append(victim)
        else:
            victim.stop()
            ctx.zombies_exited.append(victim.instance_id or "")
    exited = [v.instance_id for v in victims.values() if not v.running]
    fault.detail += f", {f'{exited} fenced and exited' if exited else 'rejoined'} after SIGCONT"


def combined(ctx: Context) -> None:
    """A broker bounce while processors and workers of both sagas are SIGKILLed and a
    member joins."""
    node = _leader(ctx, 2)
    began = time.monotonic()
    ctx.cluster.kill_node(node)
    ctx.fleet.kill_one("processor", restart=False)
    ctx.fleet.kill_one("steps", restart=True)
    ctx.fleet.kill_one("child_processor", restart=True)
    ctx.fleet.kill_one("child_steps", restart=False)
    ctx.fleet.add("steps")
    time.sleep(4)
    ctx.cluster.restart_node(node)
    ctx.broker_back()
    ctx.record(
        "combined",
        f"broker {node} + 2 processors + 2 workers killed, worker added",
        began,
        time.monotonic(),
    )


NEMESES: dict[str, Callable[[Context], None]] = {
    "leader_kill": leader_kill,
    "broker_bounce": broker_bounce,
    "controller_kill": controller_kill,
    "broker_pause": broker_pause,
    "process_kill": process_kill,
    "scale": scale,
    "graceful_stop": graceful_stop,
    "redeploy": redeploy,
    "pause_member": pause_member,
    "combined": combined,
}


class Workload(threading.Thread):
    """Starts workflows at a steady rate and approves every other one a little later."""

    def __init__(self, kafka: KafkaSettings, rate: float) -> None:
        super().__init__(daemon=True)
        self.client = SagaClient(kafka)
        self.rate = rate
        self.started: list[str] = []
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        approvals: list[tuple[float, str]] = []
        began, n = time.monotonic(), 0
        while not self.stopping.is_set():
            wid = f"trip-{n:05d}"
            try:
                self.client.start(
                    chaos_saga.saga,
                    chaos_saga.trip_input(wid, delay_ms=20),
                    workflow_id=wid,
                    wait=False,
                )
                self.started.append(wid)
                if n % 2:
                    approvals.append((time.monotonic() + 1.5, wid))
                while approvals and approvals[0][0] <= time.monotonic():
                    _, target = approvals.pop(0)
                    self.client.signal(
                        chaos_saga.saga,
                        target,
                        chaos_saga.APPROVAL_SIGNAL,
                        {"approver": "ann"},
                        check=False,
                    )
            except Exception as exc:  # a start during an outage: counted, not fatal
                self.errors.append(f"{wid}: {exc}")
            n += 1
            time.sleep(max(0.0, began + n / self.rate - time.monotonic()))
        self.client.flush(60)


def _offsets(config: dict[str, Any], topics: list[str]) -> list[Offsets]:
    result = []
    committed = Consumer({**config, "group.id": "chaos-lso", "isolation.level": "read_committed"})
    raw = Consumer({**config, "group.id": "chaos-hw", "isolation.level": "read_uncommitted"})
    try:
        for topic in topics:
            meta = committed.list_topics(topic, timeout=30).topics[topic]
            for p in sorted(meta.partitions):
                tp = TopicPartition(topic, p)
                lso = committed.get_watermark_offsets(tp, timeout=30, cached=False)[1]
                hw = raw.get_watermark_offsets(tp, timeout=30, cached=False)[1]
                result.append(Offsets(topic, p, lso, hw))
    finally:
        committed.close()
        raw.close()
    return result


def _wait_terminal(client: SagaClient, started: list[str], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        statuses = client.statuses(chaos_saga.SAGA_NAME)
        open_ = [w for w in started if w not in statuses or not statuses[w].status.is_final]
        if not open_ or time.monotonic() > deadline:
            return len(open_)
        time.sleep(0.5)


def _machine() -> dict[str, Any]:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def run(config: ChaosConfig, out: Path | None = None) -> tuple[Verdict, dict[str, Any]]:
    """Run the workload under ``config``'s nemeses, verify, and return the verdict and figures."""
    versions = compile_versions(chaos_saga.saga)
    child_versions = compile_versions(chaos_saga.insurance)
    workdir = Path(tempfile.mkdtemp(prefix="sagas-chaos-"))
    ledger_file = workdir / "ledger.jsonl"
    os.environ[ledger.LEDGER_ENV] = str(ledger_file)
    print(f"chaos run in {workdir}", flush=True)
    _log_librdkafka_to(workdir / "client-librdkafka.log")
    with LocalKafka(nodes=3, data_dir=workdir / "kafka") as cluster:
        prefix = f"chaos-{uuid.uuid4().hex[:6]}."
        kafka = KafkaSettings(bootstrap_servers=cluster.bootstrap_servers, topic_prefix=prefix)
        provision(versions, kafka)
        provision(child_versions, kafka)
        names = TopicNames(chaos_saga.SAGA_NAME, prefix)
        queues = sorted(versions.queues | child_versions.queues)
        admin = AdminClient(quiet_client_config(kafka.bootstrap_servers))
        groups: dict[str, int] = {}
        for saga_versions in (versions, child_versions):
            saga_names = TopicNames(saga_versions.name, prefix)
            topic = saga_names.events
            partitions = len(admin.list_topics(topic, timeout=30).topics[topic].partitions)
            served = sorted(saga_versions.queues)
            groups[saga_names.processor_group] = partitions
            groups[worker_group(served, prefix)] = partitions * len(served)
        fleet = Fleet(kafka, workdir)
        for role in ROLES:
            fleet.add(role)
        progress = Progress(ledger_file)
        progress.start()
        ctx = Context(cluster, kafka, fleet, progress, admin, names, groups, config)
        ctx.notes.append(NETWORK_SKIPPED)
        print(NETWORK_SKIPPED, flush=True)
        settle = wait_settled(admin, groups, fleet, timeout=120)
        print(f"groups settled after {_fmt(settle)}", flush=True)
        workload = Workload(kafka, config.start_rate)
        poison = poison_records(config.poison, names.events, chaos_saga.SAGA_NAME)
        producer = Producer(producer_config(kafka))
        began = time.monotonic()
        workload.start()
        time.sleep(5)
        poison_iter = iter(poison)
        for kind in config.nemeses:
            # Each fault meets a healthy cluster: after a broker fault, a transaction left
            # open across it may still fail and its member start over, and the restarted
            # broker may still be catching its replicas up; a fault injected meanwhile would
            # be charged with the time of both.
            ctx.wait_until_settled()
            if wait_replicated(ctx.fresh_admin(), timeout=60) is None:
                ctx.notes.append(f"before {kind}: partitions still under-replicated after 60 s")
            print(f"nemesis {kind}", flush=True)
            NEMESES[kind](ctx)
            for _ in range(max(1, len(poison) // len(config.nemeses))):
                key, value = next(poison_iter, (None, None))
                if key is not None:
                    producer.produce(names.events, value, key)
            producer.flush(30)
            time.sleep(2)
        for key, value in poison_iter:
            producer.produce(names.events, value, key)
        producer.flush(30)
        quiet_since_ms = int(time.time() * 1000)
        workload.stopping.set()
        workload.join(120)
        nemesis_s = time.monotonic() - began
        quiet = time.monotonic()
        still_open = _wait_terminal(workload.client, workload.started, config.terminal_bound_s)
        drain_s = time.monotonic() - quiet
        died = [p.instance_id for p in fleet.dead()]
        codes = fleet.stop_all()
        progress.stop()
        workload.client.close()
        record_ = read_run(
            kafka,
            queues,
            started=frozenset(workload.started),
            poison_keys=frozenset(key for key, _ in poison),
            ledger_file=ledger_file,
            quiet_since_ms=quiet_since_ms,
            terminal_bound_ms=int(config.terminal_bound_s * 1000),
        )
        verdict = verify(record_, versions, child_versions)
    if died:
        verdict.add("process-died", None, f"members exited by themselves: {died}")
    if ctx.zombies_exited:
        verdict.add("zombie-exited", None, f"resumed zombies did not rejoin: {ctx.zombies_exited}")
    if still_open:
        verdict.add("drain", None, f"{still_open} workflows not final by status after the bound")
    figures = _figures(config, ctx, verdict, workload, nemesis_s, drain_s, codes)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2) + "\n")
    return verdict, figures


def read_run(
    kafka: KafkaSettings,
    queues: list[str],
    *,
    started: frozenset[str],
    poison_keys: frozenset[bytes],
    ledger_file: Path,
    quiet_since_ms: int,
    terminal_bound_ms: int,
) -> RunRecord:
    """Read every topic of the chaos saga and of its child saga back ``read_committed``, for
    the verifier; ``queues`` are the command queues of both."""
    names = TopicNames(chaos_saga.SAGA_NAME, kafka.topic_prefix)
    child_names = TopicNames(chaos_saga.CHILD_SAGA_NAME, kafka.topic_prefix)
    config_ = quiet_client_config(kafka.bootstrap_servers)
    codec = EventCodec()

    def workflows(topic: str) -> dict[str, list[Event]]:
        events: dict[str, list[Event]] = {}
        for record in read_topic(config_, topic, timeout=120):
            if record.key in poison_keys or record.value is None:
                continue
            event = codec.decode(record.value)
            events.setdefault(event.workflow_id, []).append(event)
        return events

    def last_values(topic: str) -> dict[bytes, bytes | None]:
        return {r.key: r.value for r in read_topic(config_, topic, 120) if r.key is not None}

    letters = [DeadLetter(r.key, r.value, r.headers) for r in read_topic(config_, names.dlq)]
    topics = [
        topic
        for saga_names in (names, child_names)
        for topic in (
            saga_names.events,
            saga_names.state_changelog,
            saga_names.status,
            saga_names.dlq,
        )
    ]
    topics += [command_topic(q, kafka.topic_prefix) for q in queues]
    return RunRecord(
        started=started,
        events=workflows(names.events),
        changelog=last_values(names.state_changelog),
        dead_letters=letters,
        poison_keys=poison_keys,
        effects=ledger.view(ledger.read(ledger_file)),
        offsets=_offsets(config_, topics),
        quiet_since_ms=quiet_since_ms,
        terminal_bound_ms=terminal_bound_ms,
        children=workflows(child_names.events),
        child_changelog=last_values(child_names.state_changelog),
    )


def _log_librdkafka_to(path: Path) -> None:
    """Send the workload's librdkafka lines to a file: the nemeses make every client report
    each broker they kill, which would bury the run's own output."""
    logger = logging.getLogger(LIBRDKAFKA_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(p99, 2),
        "max": round(ordered[-1], 2),
    }


def _figures(
    config: ChaosConfig,
    ctx: Context,
    verdict: Verdict,
    workload: Workload,
    nemesis_s: float,
    drain_s: float,
    codes: dict[str, int],
) -> dict[str, Any]:
    kinds: dict[str, list[Fault]] = {}
    for fault in ctx.faults:
        kinds.setdefault(fault.kind, []).append(fault)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "config": asdict(config),
        "duration_s": {"nemeses": round(nemesis_s, 1), "drain": round(drain_s, 1)},
        "workflows": verdict.workflows,
        "terminal": verdict.terminal,
        "children": {
            "started": verdict.children,
            "terminal": verdict.children_terminal,
            "undone_by_parent": verdict.children_undone,
            "failed": verdict.children_failed,
        },
        "lost": verdict.lost,
        "stuck": verdict.stuck,
        "duplicated_decisions": verdict.duplicated_decisions,
        "duplicated_effects": verdict.duplicated_effects,
        "replayed_states_identical": verdict.replayed_states,
        "poison": {
            "delivered": verdict.poison_delivered,
            "dead_lettered": verdict.dead_lettered_poison,
        },
        "faults": {
            kind: {
                "count": len(faults),
                "recover_s": _pcts([f.recover_s for f in faults if f.recover_s is not None]),
                "never_recovered": sum(f.recover_s is None for f in faults),
                "saga_stall_s": _pcts([f.stall_s for f in faults]),
            }
            for kind, faults in kinds.items()
        },
        "fault_log": [asdict(f) for f in ctx.faults],
        "start_errors": len(workload.errors),
        "exit_codes": codes,
        "notes": ctx.notes,
        "violations": [str(v) for v in verdict.violations[:50]],
        "ok": verdict.ok,
    }
