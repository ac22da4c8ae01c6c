"""A participant built with bare confluent-kafka and fastavro from the documented .avsc files.

No schema registry and no kafka-sagas: values are plain Avro bodies written with
``command.avsc`` and ``event.avsc``, and the step's result is checked against the
contract file ``sagas schemas export`` wrote. Serves ``count`` commands and exits.

    python plain_participant.py BOOTSTRAP SCHEMA_DIR PREFIX SAGA STEP QUEUE COUNT
"""

from __future__ import annotations

import io
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, Producer
from fastavro.validation import validate


def main(argv: list[str]) -> None:
    bootstrap, schema_dir, prefix, saga, step, queue, count_text = argv
    folder = Path(schema_dir)
    command_schema = fastavro.parse_schema(json.loads((folder / "command.avsc").read_text()))
    event_schema = fastavro.parse_schema(json.loads((folder / "event.avsc").read_text()))
    # Each saga version has its contracts; a command names the version it belongs to.
    result_schemas = {
        int(path.name.removeprefix(f"{prefix}{saga}.v").split(".")[0]): fastavro.parse_schema(
            json.loads(path.read_text())
        )
        for path in folder.glob(f"{prefix}{saga}.v*.step.{step}.result.avsc")
    }

    commands_topic = f"{prefix}queue.{queue}.commands"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{prefix}queue.{queue}.workers",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
        }
    )
    consumer.subscribe([commands_topic])
    served = 0
    while served < int(count_text):
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        command: dict[str, Any] = fastavro.schemaless_reader(
            io.BytesIO(message.value()), command_schema, None
        )
        if command["step"] != step or command["kind"] != "action":
            continue
        order = json.loads(command["input"])
        result = {
            "charge_id": f"ch-{order['order_id']}",
            "amount_cents": order["amount_cents"],
            "captured": True,
        }
        validate(
            result, result_schemas[command["version"]]
        )  # raises when the result breaks the contract
        answer = {
            "event_id": str(uuid.uuid4()),
            "workflow_id": command["workflow_id"],
            "saga": command["saga"],
            "version": command["version"],
            "type": "step_succeeded",
            "origin": "worker",
            "time_ms": int(time.time() * 1000),
            "step": command["step"],
            "attempt": command["attempt"],
            "payload": json.dumps(result),
            "error": None,
            "name": None,
            "due_ms": None,
            "parent": None,
            "cause": command["command_id"],
        }
        body = io.BytesIO()
        fastavro.schemaless_writer(body, event_schema, answer)
        producer.produce(
            command["reply_topic"], key=command["workflow_id"].encode(), value=body.getvalue()
        )
        producer.flush(30)
        consumer.commit(message, asynchronous=False)
        served += 1
    consumer.close()


if __name__ == "__main__":
    main(sys.argv[1:])
