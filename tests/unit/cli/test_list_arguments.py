"""A list request is checked where it is made: a mistyped status, filter, time or limit
is one usage line naming it (exit code 2) before any broker is asked; a request crosses
to the processor and back unchanged."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from sagas.cli import main
from sagas.cli.visibility import table_lines
from sagas.devkafka.cluster import free_port
from sagas.errors import SagaError
from sagas.workflow_search import AttributeFilter, WorkflowSearch, parse_cursor


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--status", "complted"], "no such status: COMPLTED"),
        (["--where", "no condition"], "cannot read filter 'no condition'"),
        (["--since", "yesterday"], "--since is not an ISO time"),
        (["--ended-until", "12/01/2026"], "--ended-until is not an ISO time"),
        (["--limit", "0"], "0 is not in the range 1<=x<=1000"),
    ],
)
def test_a_mistyped_argument_is_one_usage_line_before_kafka_is_asked(
    arguments: list[str], named: str
) -> None:
    # Nothing listens on the port: reaching for it would be exit code 4 after seconds.
    unreachable = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        main, ["list", "order", *arguments, "--bootstrap-servers", unreachable]
    )
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output


def test_an_unknown_status_names_the_known_ones() -> None:
    with pytest.raises(SagaError, match=r"no such status: DONE, OK \(one of RUNNING, "):
        WorkflowSearch(status=("COMPLETED", "DONE", "OK"))


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_a_limit_outside_one_to_a_thousand_is_refused(limit: int) -> None:
    with pytest.raises(SagaError, match=f"limit must be between 1 and 1000, got {limit}"):
        WorkflowSearch(limit=limit)


def test_a_request_crosses_as_json_unchanged() -> None:
    request = WorkflowSearch(
        status=("RUNNING", "COMPENSATING"),
        version=2,
        step="approve",
        parked=False,
        started_since_ms=1_000,
        started_until_ms=2_000,
        ended_since_ms=3_000,
        ended_until_ms=4_000,
        where=(AttributeFilter("total", ">=", 10), AttributeFilter("customer_id", "=", "c-7")),
        limit=50,
        cursor='[1500,"order-7"]',
    )
    assert WorkflowSearch.from_json(request.to_json()) == request
    assert parse_cursor('[1500,"order-7"]') == (1500, "order-7")


@pytest.mark.parametrize(
    "data",
    [
        {"status": ["FINISHED"]},
        {"where": [["total", "~", 1]]},
        {"limit": "many"},
        [],
    ],
)
def test_a_malformed_request_from_the_wire_is_a_saga_error(data: object) -> None:
    with pytest.raises(SagaError):
        WorkflowSearch.from_json(data)  # type: ignore[arg-type]


def test_the_table_shows_start_and_end_in_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30 all year: the offset shows
    time.tzset()
    try:
        lines = table_lines([
            {"workflow_id": "order-2", "status": "RUNNING", "started_ms": 1_796_400_000_000,
             "ended_ms": None, "current_steps": ["approve"], "attributes": {"total": 7}},
            {"workflow_id": "order-1", "status": "COMPLETED", "started_ms": 1_796_396_400_000,
             "ended_ms": 1_796_396_461_500, "current_steps": [], "attributes": {}},
        ])  # fmt: skip
    finally:
        monkeypatch.undo()
        time.tzset()
    header, running, ended = lines
    assert header.split() == ["WORKFLOW", "STATUS", "STARTED", "ENDED", "STEPS", "ATTRIBUTES"]
    assert running.split() == ["order-2", "RUNNING", "2026-12-04T21:30:00", "approve", "total=7"]
    assert running.index("approve") == header.index("STEPS"), "an empty ENDED keeps its column"
    assert ended.split() == ["order-1", "COMPLETED", "2026-12-04T20:30:00", "2026-12-04T20:31:01"]
