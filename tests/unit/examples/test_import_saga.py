from datetime import timedelta

from examples.import_saga import IMPORTED, STARTS, ImportJob, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment

JOB = ImportJob(file="customers.csv", rows=1000, batch=100)


def test_an_import_that_is_not_interrupted_runs_once_from_row_0() -> None:
    STARTS.clear()
    with SagaTestEnvironment(saga) as env:
        wf = env.start(JOB, workflow_id="imp-1")
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.result_of(wf, "import_rows").resumed_from == 0
    assert STARTS == [(1, 0)]


def test_a_killed_worker_is_a_missed_heartbeat_and_the_next_attempt_resumes() -> None:
    STARTS.clear()
    with SagaTestEnvironment(saga) as env:
        env.crash("import_rows", after_heartbeats=4, attempts=[1])
        wf = env.start(JOB, workflow_id="imp-2")
        beats = [e for e in env.history(wf) if e.type is EventType.HEARTBEAT]
        assert beats
        assert beats[-1].payload == '{"next_row":400}'
        env.advance(timedelta(seconds=6) - timedelta(milliseconds=1))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(milliseconds=1))
        timed_out = [e for e in env.history(wf) if e.type is EventType.STEP_TIMED_OUT]
        assert [(e.attempt, e.error and e.error.type) for e in timed_out] == [
            (1, "HeartbeatTimedOut")
        ]
        # Attempt 2 goes out after the 1 s backoff, but the dead worker's partition has
        # no owner until the group's session timeout (10 s) hands it to another worker.
        env.advance(timedelta(seconds=1))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(seconds=3))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.result_of(wf, "import_rows").resumed_from == 400
        # Heartbeats are inputs the log holds: a replay folds them to the same state.
        assert env.replay(wf) == env._state(wf)
    # The new owner gets the killed attempt's command again with attempt 2's behind it:
    # it skips the stale one and resumes from the details.
    assert STARTS == [(1, 0), (2, 400)]
    assert IMPORTED["imp-2/import_rows/action"] == set(range(1000))


def test_a_worker_back_before_the_heartbeat_timeout_runs_the_attempt_again() -> None:
    STARTS.clear()
    with SagaTestEnvironment(saga) as env:
        env.crash("import_rows", after_heartbeats=4, attempts=[1], handover=timedelta(seconds=2))
        wf = env.start(JOB, workflow_id="imp-3")
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.advance(timedelta(seconds=2))
        # Attempt 1 is still live for the saga: its command, delivered again, runs from
        # the start (the command carries the details of earlier attempts only), and the
        # idempotency key keeps the rows done twice in the table once.
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.result_of(wf, "import_rows").resumed_from == 0
        assert EventType.STEP_TIMED_OUT not in env.event_types(wf)
        assert env.replay(wf) == env._state(wf)
    assert STARTS == [(1, 0), (1, 0)]
    assert IMPORTED["imp-3/import_rows/action"] == set(range(1000))
