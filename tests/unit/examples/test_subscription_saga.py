from datetime import timedelta

from examples.subscription_saga import INVOICES, Cancel, Period, saga
from sagas.events import EventType, WorkflowStatus
from sagas.testing import SagaTestEnvironment


def test_each_period_continues_as_new_with_a_state_that_does_not_grow() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(
            Period(subscription_id="s1", monthly_cents=500, last_period=12), workflow_id="sub-1"
        )
        sizes = []
        for _ in range(11):
            env.advance(timedelta(days=30))
            sizes.append(len(env.states[wf].to_bytes()))
        status = env.run_until_complete(wf)
        assert status.status is WorkflowStatus.COMPLETED
        assert env.event_types(wf).count(EventType.CONTINUED_AS_NEW) == 11
        assert max(sizes) - min(sizes) < 40  # one period's state, only the numbers grow
        last = Period.model_validate_json(env.states[wf].input)
        assert (last.period, last.billed_cents) == (12, 11 * 500)
        assert env.executed(wf) == ["bill_period"] * 12
    keys = [k for k in INVOICES if k.startswith("sub-1/")]
    assert len(keys) == 12  # every run bills with keys of its own


def test_status_names_the_chain_of_runs() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Period(subscription_id="s2", monthly_cents=1), workflow_id="sub-2")
        first = env.status(wf)
        assert first.run_id is not None
        assert first.previous_run_id is None
        env.advance(timedelta(days=30))
        second = env.status(wf)
        assert second.previous_run_id == first.run_id
        assert second.run_id not in (None, first.run_id)
        continued = [e for e in env.history(wf) if e.type is EventType.CONTINUED_AS_NEW]
        assert [e.event_id for e in continued] == [second.run_id]
        restarted = env.history(wf)[env.history(wf).index(continued[0]) + 1]
        assert restarted.type is EventType.STARTED
        assert restarted.name == first.run_id


def test_a_cancel_sent_with_the_start_ends_after_the_first_period() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.signal_with_start(
            Period(subscription_id="s3", monthly_cents=7),
            "cancel",
            Cancel(reason="moving"),
            workflow_id="sub-3",
        )
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == ["bill_period"]
        types = env.event_types(wf)
        assert types[:3] == [
            EventType.SIGNAL_WITH_START,
            EventType.STARTED,
            EventType.SIGNAL_RECEIVED,
        ]


def test_signal_with_start_on_a_running_workflow_only_signals_it() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Period(subscription_id="s4", monthly_cents=3), workflow_id="sub-4")
        env.signal_with_start(
            Period(subscription_id="other", monthly_cents=99),
            "cancel",
            Cancel(reason="x"),
            workflow_id=wf,
        )
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert Period.model_validate_json(env.states[wf].input).subscription_id == "s4"
        assert env.event_types(wf).count(EventType.STARTED) == 1


def test_a_cancel_in_a_later_run_ends_the_subscription() -> None:
    with SagaTestEnvironment(saga) as env:
        wf = env.start(Period(subscription_id="s5", monthly_cents=3), workflow_id="sub-5")
        assert env.states[wf].pending == []
        env.advance(timedelta(days=30))
        assert env.status(wf).status is WorkflowStatus.RUNNING
        env.signal(wf, "cancel", Cancel(reason="done"))
        assert env.status(wf).status is WorkflowStatus.COMPLETED
        assert env.executed(wf) == ["bill_period", "bill_period"]
