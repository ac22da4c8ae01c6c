import asyncio
from datetime import timedelta

import pytest
from pydantic import BaseModel

from sagas import (
    ActionError,
    NonRetryableError,
    Retry,
    Saga,
    SagaError,
    StepContext,
    StepKind,
)
from sagas.engine import StepFunctions, compile_versions
from sagas.engine.execution import HeartbeatSender, run_command
from sagas.events import Command, CommandKind, EventType


class In(BaseModel):
    name: str


class Greeting(BaseModel):
    text: str


class FlakyError(Exception):
    pass


def make_plan() -> StepFunctions:
    saga = Saga("greet", input=In)

    @saga.step(retry=Retry(non_retryable_errors=(FlakyError,)), timeout=timedelta(seconds=5))
    async def hello(ctx: StepContext[In]) -> Greeting:
        if ctx.input.name == "flaky":
            raise FlakyError("flaky")
        if ctx.input.name == "declined":
            raise NonRetryableError("declined")
        if ctx.input.name == "busy":
            raise ActionError("busy")
        if ctx.input.name == "slow":
            await asyncio.sleep(10)
        return Greeting(text=f"hello {ctx.input.name} #{ctx.attempt} {ctx.idempotency_key}")

    @hello.compensation
    def goodbye(ctx: StepContext[In]) -> None:
        assert ctx.is_compensation
        assert ctx.result_of(hello).text.startswith("hello")

    return compile_versions(saga).functions[1]


def command(
    name: str,
    kind: CommandKind = CommandKind.ACTION,
    deadline: int | None = None,
    results: str | None = None,
) -> Command:
    return Command(
        command_id="c1",
        workflow_id="w",
        saga="greet",
        version=1,
        step="hello",
        attempt=2,
        kind=kind,
        idempotency_key=f"w/hello/{kind.value}",
        reply_topic="greet.events",
        time_ms=0,
        deadline_ms=deadline,
        input=f'{{"name": "{name}"}}',
        results=results,
    )


def test_success_answers_with_the_result_json() -> None:
    answer = asyncio.run(run_command(make_plan(), command("ann"), lambda: 7))
    assert answer.type is EventType.STEP_SUCCEEDED
    assert (answer.step, answer.attempt, answer.time_ms) == ("hello", 2, 7)
    assert answer.payload == '{"text":"hello ann #2 w/hello/action"}'


@pytest.mark.parametrize(
    ("name", "error_type", "non_retryable"),
    [
        ("flaky", "FlakyError", True),
        ("declined", "NonRetryableError", True),
        ("busy", "ActionError", False),
    ],
)
def test_errors_say_whether_a_retry_can_help(
    name: str, error_type: str, non_retryable: bool
) -> None:
    answer = asyncio.run(run_command(make_plan(), command(name), lambda: 0))
    assert answer.type is EventType.STEP_FAILED
    assert answer.error is not None
    assert (answer.error.type, answer.error.non_retryable) == (error_type, non_retryable)


def test_a_plain_compensation_runs_in_a_thread_and_reads_the_result() -> None:
    cmd = command("ann", CommandKind.COMPENSATE, results='{"hello": {"text": "hello ann"}}')
    answer = asyncio.run(run_command(make_plan(), cmd, lambda: 0))
    assert answer.type is EventType.COMPENSATION_SUCCEEDED
    bad = command("ann", CommandKind.COMPENSATE, results="{}")
    answer = asyncio.run(run_command(make_plan(), bad, lambda: 0))
    assert answer.type is EventType.COMPENSATION_FAILED


def test_a_command_past_its_deadline_is_abandoned() -> None:
    answer = asyncio.run(run_command(make_plan(), command("slow", deadline=20), lambda: 0))
    assert answer.type is EventType.STEP_FAILED
    assert answer.error is not None
    assert answer.error.type == "StepTimedOut"


def test_unknown_action_is_an_error() -> None:
    with pytest.raises(SagaError, match="no compensate function"):
        make_plan().action("nope", CommandKind.COMPENSATE)


def test_a_superseded_attempt_ends_at_its_next_heartbeat_and_sends_nothing_more() -> None:
    saga = Saga("rows", input=In)
    reached: list[int] = []

    @saga.step(
        kind=StepKind.PIVOT, timeout=timedelta(minutes=1), heartbeat_timeout=timedelta(seconds=6)
    )
    def import_rows(ctx: StepContext[In]) -> int:
        for row in range(10):
            if row == 3:
                sender.supersede()  # as the worker does when attempt 2's command arrives
            ctx.heartbeat({"next_row": row})
            reached.append(row)
        return 10

    functions = compile_versions(saga).functions[1]
    command = Command(
        "w/import_rows/action/1", "w", "rows", 1, "import_rows", 1, CommandKind.ACTION, "k",
        "rows.events", 0, deadline_ms=60_000, input='{"name": "n"}', heartbeat_timeout_ms=6_000,
    )  # fmt: skip
    sent: list[str | None] = []
    sender = HeartbeatSender(command, lambda: 1_000, lambda event: sent.append(event.payload))
    answer = asyncio.run(run_command(functions, command, lambda: 1_000, sender))
    assert reached == [0, 1, 2]
    assert answer.type is EventType.STEP_FAILED
    assert answer.error is not None
    assert answer.error.type == "AttemptSupersededError"
    assert answer.attempt == 1
    # The first beat went out; the later ones were held by the interval and then dropped.
    assert sent == ['{"next_row":0}']
    assert not sender.flush()
