"""The 4-step order saga hand-rolled on faust-streaming: the baseline a team would write.

A saga agent consumes the event topic (keyed by workflow id), keeps each workflow's
state in a RocksDB-backed ``Table`` (faust's rocksdb store on ``rocksdict``), sends the
next step's command to the command topic, and reports a finished saga on the completed
topic. A step agent consumes the commands, runs the step (no I/O) and answers on the event
topic. Exactly-once processing is on, through faust's aiokafka driver (its confluent driver
deadlocks before its first assignment). It covers only the topics the app itself consumes:
the completed topic's records are written outside faust's transactions (its log holds no
transaction markers), so a crash can publish a completion twice.

Imported only in the peers' environment, and run as a faust worker by
:mod:`bench.peers.faust_peer` with ``python -m bench.peers.faust_app worker``; the
settings come from ``FAUST_PEER_*`` environment variables.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path

import faust

STEPS = ("charge", "reserve", "ship", "notify")


class SagaEvent(faust.Record, serializer="json"):
    """An input of the saga agent: a start request, or a step's answer."""

    workflow_id: str
    kind: str
    step: int = -1
    result: str = ""


class StepCommand(faust.Record, serializer="json"):
    """A command to run one step of one workflow."""

    workflow_id: str
    step: int


class SagaState(faust.Record, serializer="json"):
    """What the saga agent keeps per workflow."""

    next_step: int
    status: str
    results: list[str]


class SagaCompleted(faust.Record, serializer="json"):
    """Published when a workflow's last step has succeeded."""

    workflow_id: str
    results: list[str]


def _step_action(name: str) -> Callable[[str], str]:
    def action(workflow_id: str) -> str:
        return f"{name}:{workflow_id}"

    return action


STEP_ACTIONS = [_step_action(name) for name in STEPS]


@dataclass(frozen=True)
class FaustPeerSettings:
    """The faust app's settings, passed by the benchmark through the environment."""

    bootstrap: str
    prefix: str
    partitions: int
    data_dir: Path
    commit_interval_s: float
    web_port: int
    guarantee: str

    @classmethod
    def from_env(cls) -> FaustPeerSettings:
        """Read ``FAUST_PEER_*`` variables, naming the one that is missing."""
        try:
            return cls(
                bootstrap=os.environ["FAUST_PEER_BOOTSTRAP"],
                prefix=os.environ["FAUST_PEER_PREFIX"],
                partitions=int(os.environ["FAUST_PEER_PARTITIONS"]),
                data_dir=Path(os.environ["FAUST_PEER_DATA_DIR"]),
                commit_interval_s=float(os.environ["FAUST_PEER_COMMIT_INTERVAL_S"]),
                web_port=int(os.environ["FAUST_PEER_WEB_PORT"]),
                guarantee=os.environ["FAUST_PEER_GUARANTEE"],
            )
        except KeyError as exc:
            raise SystemExit(f"faust peer: environment variable {exc.args[0]} is not set") from exc


def topic_names(prefix: str) -> dict[str, str]:
    """Return the app's topics by role."""
    return {
        "events": f"{prefix}.events",
        "commands": f"{prefix}.commands",
        "completed": f"{prefix}.completed",
    }


def create_app(settings: FaustPeerSettings) -> faust.App:
    """Build the faust app with its table and its two agents."""
    app = faust.App(
        f"{settings.prefix}-app",
        broker=f"kafka://{settings.bootstrap}",
        store="rocksdb://",
        datadir=str(settings.data_dir),
        processing_guarantee=settings.guarantee,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        # faust commits (and so ends its transactions) on a timer, 2.8 s by default; a
        # read_committed reader sees nothing before that, so each of a saga's eight hops
        # would wait for it. A short interval is the fair setting for a latency-bound chain.
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        # faust's worker serves its web views whatever web_enabled says; keep them on
        # loopback, on a port of their own so that runs side by side do not collide.
        web_enabled=False,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=settings.web_port,
        autodiscover=False,
    )
    names = topic_names(settings.prefix)
    events = app.topic(names["events"], key_type=str, value_type=SagaEvent)
    commands = app.topic(names["commands"], key_type=str, value_type=StepCommand)
    completed = app.topic(names["completed"], key_type=str, value_type=SagaCompleted)
    table = app.Table("sagas", key_type=str, value_type=SagaState, partitions=settings.partitions)

    @app.agent(events)
    async def saga(stream: AsyncIterable[SagaEvent]) -> None:
        async for event in stream:
            workflow_id = event.workflow_id
            state = table.get(workflow_id)
            if event.kind == "start":
                if state is not None:
                    continue
                table[workflow_id] = SagaState(next_step=0, status="running", results=[])
                await commands.send(key=workflow_id, value=StepCommand(workflow_id, 0))
            elif event.kind == "step_done":
                # A redelivered or stale answer must not advance the saga twice.
                if state is None or state.status != "running" or event.step != state.next_step:
                    continue
                results = [*state.results, event.result]
                following = event.step + 1
                if following == len(STEPS):
                    table[workflow_id] = SagaState(following, "completed", results)
                    await completed.send(key=workflow_id, value=SagaCompleted(workflow_id, results))
                else:
                    table[workflow_id] = SagaState(following, "running", results)
                    await commands.send(key=workflow_id, value=StepCommand(workflow_id, following))

    @app.agent(commands)
    async def step_worker(stream: AsyncIterable[StepCommand]) -> None:
        async for command in stream:
            result = STEP_ACTIONS[command.step](command.workflow_id)
            await events.send(
                key=command.workflow_id,
                value=SagaEvent(command.workflow_id, "step_done", command.step, result),
            )

    return app


if __name__ == "__main__":
    create_app(FaustPeerSettings.from_env()).main()
