"""A participant built only with confluent-kafka's own Avro serializers and a schema registry.

It imports nothing of kafka-sagas: it is what a team writing in Java or Go would do with
Confluent's serializers. It reads the step's typed contracts from the registry, serves
``count`` commands of one step, and exits.

    python confluent_participant.py BOOTSTRAP REGISTRY_URL PREFIX SAGA STEP QUEUE COUNT
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def note(text: str) -> None:
    """One line on stderr, which the test shows when a workflow does not finish."""
    print(f"{time.monotonic():.3f} {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    bootstrap, registry_url, prefix, saga, step, queue, count_text = argv
    # Without a timeout the client waits forever for an answer: a registry request that
    # never completes would leave the participant silent, its workflows unserved.
    registry = SchemaRegistryClient({"url": registry_url, "timeout": 10})
    latest = {"auto.register.schemas": False, "use.latest.version": True}
    result_writer = AvroSerializer(registry, conf=latest)
    result_reader = AvroDeserializer(registry)
    # Envelopes: commands are read by the schema id they carry; answers are written with the
    # Event schema the saga's event topic has registered.
    command_reader = AvroDeserializer(registry)
    event_writer = AvroSerializer(registry, conf=latest)
    input_fields: dict[int, set[str]] = {}  # per saga version: its step's input contract

    def contract_fields(version: int) -> set[str]:
        if version not in input_fields:
            subject = f"{prefix}{saga}.v{version}.step.{step}.input-value"
            schema = json.loads(registry.get_latest_version(subject).schema.schema_str)
            input_fields[version] = {f["name"] for f in schema["fields"]}
        return input_fields[version]

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
            "partitioner": "murmur2_random",  # the Java client's placement of keyed records
            "enable.idempotence": True,
        }
    )
    consumer.subscribe(
        [commands_topic], on_assign=lambda _, parts: note(f"assigned {len(parts)} partitions")
    )
    note("subscribed")
    delivered: list[Any] = []  # the delivery report of the answer in flight
    served = 0
    while served < int(count_text):
        message = consumer.poll(1.0)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.fatal():
                raise SystemExit(f"consumer failed: {error}")
            note(f"consumer error: {error}")
            continue
        note(f"command at {message.partition()}@{message.offset()}")
        command: dict[str, Any] = command_reader(
            message.value(), SerializationContext(commands_topic, MessageField.VALUE)
        )
        if command["step"] != step or command["kind"] != "action":
            note(f"skipped {command['kind']} of {command['step']}")
            continue
        order = json.loads(command["input"])
        missing = contract_fields(command["version"]) - set(order)
        if missing:
            raise SystemExit(f"command input lacks contract fields {sorted(missing)}")
        result = {
            "charge_id": f"ch-{order['order_id']}",
            "amount_cents": order["amount_cents"],
            "captured": True,
        }
        # Serializing with the registered result contract refuses a result that breaks it.
        # Its subject is <this>-value, the contract of the version the command names.
        result_topic = f"{prefix}{saga}.v{command['version']}.step.{step}.result"
        framed = result_writer(result, SerializationContext(result_topic, MessageField.VALUE))
        typed = result_reader(framed, SerializationContext(result_topic, MessageField.VALUE))
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
            "payload": json.dumps(typed),
            "error": None,
            "name": None,
            "due_ms": None,
            "parent": None,
            "cause": command["command_id"],
        }
        reply_topic = command["reply_topic"]
        delivered.clear()
        producer.produce(
            reply_topic,
            key=command["workflow_id"].encode(),
            value=event_writer(answer, SerializationContext(reply_topic, MessageField.VALUE)),
            on_delivery=lambda error, record: delivered.append(error or record),
        )
        # The command's offset is committed only once the answer is acknowledged: an answer
        # lost unnoticed would leave its workflow waiting for the step's timeout.
        if producer.flush(30) or not delivered or isinstance(delivered[0], KafkaError):
            raise SystemExit(f"answer to {command['workflow_id']} not delivered: {delivered}")
        note(
            f"answered {command['workflow_id']} attempt {command['attempt']}"
            f" on partition {delivered[0].partition()}"
        )
        consumer.commit(message, asynchronous=False)  # only once the answer is acknowledged
        served += 1
    consumer.close()


if __name__ == "__main__":
    main(sys.argv[1:])
