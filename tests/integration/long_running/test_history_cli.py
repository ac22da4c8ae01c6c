"""``sagas history SAGA WID`` prints every event of a workflow in log order."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sagas.client.history import read_history
from sagas.events import EventType
from tests.integration.long_running import approval_saga
from tests.integration.long_running.conftest import Runtime

_REPO = Path(__file__).resolve().parents[3]
NAME = approval_saga.saga.name

EXPECTED = [
    (EventType.START_REQUESTED, None, None),
    (EventType.STARTED, None, None),
    (EventType.STEP_SCHEDULED, "submit", 1),
    (EventType.STEP_SUCCEEDED, "submit", 1),
    (EventType.WAIT_STARTED, "decision", None),
    (EventType.SIGNAL, None, None),
    (EventType.SIGNAL_RECEIVED, None, None),
    (EventType.BRANCH_TAKEN, "route", None),
    (EventType.STEP_SCHEDULED, "notify_rejected", 1),
    (EventType.STEP_SUCCEEDED, "notify_rejected", 1),
    (EventType.COMPLETED, None, None),
]
"""(type, step, attempt) of each event a rejected claim's workflow is made of, in order."""


def test_history_command_prints_every_event_in_order(
    saga_runtime: Callable[..., Runtime],
) -> None:
    runtime = saga_runtime(approval_saga.saga)
    client, kafka = runtime.client, runtime.kafka
    claim = approval_saga.Claim(expense_id="h1", amount_cents=4200)
    wid = client.start(approval_saga.saga, claim, workflow_id="history-claim")
    deadline = time.monotonic() + 60
    while not any(e.type is EventType.WAIT_STARTED for e in read_history(kafka, NAME, wid)):
        assert time.monotonic() < deadline, "the workflow never reached its wait"
        time.sleep(0.2)
    rejection = approval_saga.Decision(approver="carol")
    client.signal(approval_saga.saga, wid, "rejected", rejection)
    client.result(NAME, wid, timeout=60)

    shown = subprocess.run(
        [sys.executable, "-m", "sagas.cli", "history", NAME, wid,
         "--bootstrap-servers", kafka.bootstrap_servers, "--topic-prefix", kafka.topic_prefix],
        cwd=_REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()  # fmt: skip

    events = read_history(kafka, NAME, wid)
    assert [(e.type, e.step, e.attempt or None) for e in events] == EXPECTED
    assert len(shown) == len(events), shown
    for line, event in zip(shown, events, strict=True):
        fields = line.split("  ")
        when = datetime.strptime(fields[0], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        assert int(when.timestamp() * 1000) == event.time_ms, line
        assert fields[1].strip() == event.type.value, line
        rest = [f.strip() for f in fields[2:] if f.strip()]
        assert (f"step={event.step}" in rest) == (event.step is not None), line
        assert (f"attempt={event.attempt}" in rest) == bool(event.attempt), line
    by_type = dict(zip((e.type for e in events), shown, strict=True))
    assert '"expense_id":"h1"' in by_type[EventType.START_REQUESTED]
    assert "name=rejected" in by_type[EventType.SIGNAL]
    assert 'payload={"approver":"carol"}' in by_type[EventType.SIGNAL_RECEIVED]
    assert "name=notify_rejected" in by_type[EventType.BRANCH_TAKEN]
    assert 'payload={"submit":"claim-h1","notify_rejected":"carol"}' in by_type[EventType.COMPLETED]
