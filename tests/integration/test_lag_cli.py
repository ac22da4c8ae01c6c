"""``sagas lag`` against a real broker: every group of a saga, in records and seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from click.testing import CliRunner

from examples.order_saga import OrderInput, saga
from processors.runner import provision
from sagas.cli import main
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions


def test_lag_reports_every_group_with_no_live_member(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("lag") + "."
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    provision(compile_versions(saga), kafka)
    with SagaClient(kafka) as client:
        client.start(
            saga, OrderInput(order_id="1", customer_email="a@b.c", amount_cents=1, sku="m")
        )
    time.sleep(1.2)
    args = ["lag", "examples.order_saga:saga", "--bootstrap-servers", kafka_bootstrap,
            "--topic-prefix", prefix]  # fmt: skip

    as_json = CliRunner().invoke(main, [*args, "--output", "json"])
    table = CliRunner().invoke(main, args)

    assert as_json.exit_code == 0, as_json.output
    groups = {group["group"]: group for group in json.loads(as_json.output)}
    processor = groups[f"{prefix}order.processor"]
    assert processor["role"] == "processor"
    assert processor["live"] is False
    assert processor["records"] == 1
    assert 1.0 <= processor["age_seconds"] < 60
    steps = groups[f"{prefix}queue.inventory+order+payments+shipping.workers"]
    assert steps["records"] == 0
    assert steps["age_seconds"] == 0
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split() == [
        "GROUP", "ROLE", "LIVE", "TOPIC", "PARTITION", "COMMITTED", "END", "RECORDS", "AGE"
    ]  # fmt: skip


def test_lag_fails_fast_with_one_line_when_kafka_is_unreachable() -> None:
    started = time.monotonic()

    result = CliRunner().invoke(
        main, ["lag", "examples.order_saga:saga", "--bootstrap-servers", "127.0.0.1:1"]
    )

    assert time.monotonic() - started < 15
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: cannot read the lag of saga 'order' from 127.0.0.1:1:")
    assert "Traceback" not in result.output
