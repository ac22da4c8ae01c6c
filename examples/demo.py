"""The README's demo: order sagas end to end on a real local Kafka broker.

Starts Apache Kafka on 127.0.0.1 (or uses ``SAGAS_BOOTSTRAP_SERVERS``), creates the order
saga's topics, runs its saga processor and step worker in this process, starts a handful
of orders — one of them for a sold-out item, so its payment is refunded — and prints each
saga's outcome and the history of the compensated one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from examples.order_saga import OUT_OF_STOCK, OrderInput, saga
from processors.runner import WorkerRunner, provision
from processors.settings import ProcessorSettings
from sagas.cli.log_setup import configure_logging
from sagas.client import SagaClient
from sagas.client.history import describe, read_history
from sagas.config import KafkaSettings
from sagas.devkafka import LocalKafka
from sagas.engine.versions import compile_versions

ORDERS = [
    OrderInput(order_id="1001", customer_email="ann@example.com", amount_cents=1250, sku="mug"),
    OrderInput(order_id="1002", customer_email="bob@example.com", amount_cents=4999, sku="lamp"),
    OrderInput(
        order_id="1003",
        customer_email="cat@example.com",
        amount_cents=899,
        sku=next(iter(OUT_OF_STOCK)),
    ),
    OrderInput(order_id="1004", customer_email="dan@example.com", amount_cents=2500, sku="desk"),
]


def run(bootstrap: str) -> None:
    """Run the order saga on the broker at ``bootstrap`` and print what happened."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"demo{int(time.time())}.")
    versions = compile_versions(saga)
    provision(versions, kafka)
    with tempfile.TemporaryDirectory(prefix="sagas-demo-") as state_dir:
        settings = ProcessorSettings(state_dir=Path(state_dir))
        runner = WorkerRunner(versions, kafka, processor_settings=settings).start()
        try:
            runner.wait_ready()
            with SagaClient(kafka) as client:
                started = {order.order_id: client.start(saga, order) for order in ORDERS}
                print(f"started {len(started)} order sagas")
                compensated = None
                for order_id, wid in started.items():
                    record = client.result(saga, wid, timeout=60)
                    detail = record.error.message if record.error else "all steps done"
                    print(f"  order {order_id}: {record.status.value:<11} ({detail})")
                    if record.failed_step is not None:
                        compensated = wid
            if compensated is not None:
                print(f"history of {compensated}:")
                for event in read_history(kafka, saga.name, compensated):
                    print("   ", describe(event))
        finally:
            runner.stop()
        runner.raise_errors()


def main() -> int:
    # Warnings of the demo's own code; of librdkafka's lines only errors (a fresh broker
    # answers "coordinator load in progress" for a moment, which the clients retry).
    configure_logging("warning", kafka_level="error")
    configured = os.environ.get("SAGAS_BOOTSTRAP_SERVERS")
    if configured:
        run(configured)
        return 0
    print("Starting a local Apache Kafka broker on 127.0.0.1 ...", flush=True)
    with LocalKafka() as cluster:
        print(f"Kafka is up at {cluster.bootstrap_servers}", flush=True)
        run(cluster.bootstrap_servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
