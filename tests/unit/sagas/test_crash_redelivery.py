"""A killed worker's command in the test kit: delivered again to the next worker, as the
broker does with a command whose offset the dead worker never committed."""

from datetime import timedelta

from pydantic import BaseModel

from sagas import Retry, Saga, StepContext, StepKind
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment


class Mail(BaseModel):
    to: str = "ada@example.com"


MAILS_SENT: list[tuple[str, int]] = []
"""(idempotency key, attempt) of every mail the step below sent, keyed or not."""


def mail_saga(heartbeat_timeout: timedelta = timedelta(seconds=30)) -> Saga[Mail]:
    saga = Saga("mails", input=Mail)

    @saga.step(
        kind=StepKind.PIVOT,
        timeout=timedelta(minutes=5),
        heartbeat_timeout=heartbeat_timeout,
        retry=Retry(max_attempts=3, initial_interval=timedelta(seconds=1)),
    )
    def send_welcome(ctx: StepContext[Mail]) -> str:
        ctx.heartbeat("sending")
        MAILS_SENT.append((ctx.idempotency_key, ctx.attempt))
        ctx.heartbeat("sent")  # the worker dies here, after the effect, before the answer
        return "sent"

    @saga.step(kind=StepKind.RETRIABLE, timeout=timedelta(minutes=1), retry=Retry(max_attempts=2))
    def log_it(ctx: StepContext[Mail]) -> None:
        return None

    return saga


def test_the_next_worker_runs_the_killed_command_again_so_the_effect_happens_twice() -> None:
    MAILS_SENT.clear()
    with SagaTestEnvironment(mail_saga()) as env:
        env.crash("send_welcome", after_heartbeats=1)
        wf = env.start(Mail())
        assert env.status(wf).status is WorkflowStatus.RUNNING
        assert len(MAILS_SENT) == 1
        env.advance(timedelta(seconds=10) - timedelta(milliseconds=1))
        assert len(MAILS_SENT) == 1  # no worker owns the partition before the session timeout
        env.advance(timedelta(milliseconds=1))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        # The same attempt, twice: the key is what lets the mail service send it once.
        key = f"{wf}/send_welcome/action"
        assert [(key, 1), (key, 1)] == MAILS_SENT
        assert [e.attempt for e in env.executions if e.step == "send_welcome"] == [1, 1]
        assert EventType.STEP_TIMED_OUT not in env.event_types(wf)
        assert env.executed(wf) == ["send_welcome", "send_welcome", "log_it"]


def test_a_crash_on_every_attempt_kills_each_command_once_not_its_redelivery() -> None:
    MAILS_SENT.clear()
    with SagaTestEnvironment(mail_saga()) as env:
        env.crash("send_welcome", after_heartbeats=1, handover=timedelta(0))
        wf = env.start(Mail())
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert [attempt for _, attempt in MAILS_SENT] == [1, 1]


def test_commands_of_the_workflow_sent_meanwhile_wait_and_a_stale_attempt_is_skipped() -> None:
    MAILS_SENT.clear()
    with SagaTestEnvironment(mail_saga(heartbeat_timeout=timedelta(seconds=3))) as env:
        env.crash("send_welcome", after_heartbeats=1, attempts=[1])
        wf = env.start(Mail())
        env.advance(timedelta(seconds=4))
        # Attempt 1 timed out (no heartbeat) and attempt 2 went out at 4 s, to a partition
        # nobody owns yet: it waits for the handover with the killed command.
        scheduled = [e.attempt for e in env.history(wf) if e.type is EventType.STEP_SCHEDULED]
        assert scheduled == [1, 2]
        assert len(MAILS_SENT) == 1
        env.advance(timedelta(seconds=6))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        # The new owner got attempts 1 and 2 together and ran only the later one.
        assert [attempt for _, attempt in MAILS_SENT] == [1, 2]
        assert env.replay(wf) == env.states[wf]
