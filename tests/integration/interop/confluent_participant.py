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

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main(argv: list[str]) -> None:
    bootstrap, registry_url, prefix, saga, step, queue, count_text = argv
    registry = SchemaRegistryClient({"url": registry_url})
    # The step's contracts: fields of the input its commands carry, and of its result.
    input_schema = registry.get_latest_version(f"{prefix}{saga}.step.{step}.input-value")
    input_fields = {f["name"] for f in json.loads(input_schema.schema.schema_str)["fields"]}
    result_topic = f"{prefix}{saga}.step.{step}.result"  # its subject is <this>-value
    latest = {"auto.register.schemas": False, "use.latest.version": True}
    result_writer = AvroSerializer(registry, conf=latest)
    result_reader = AvroDeserializer(registry)
    # Envelopes: commands are read by the schema id they carry; answers are written with the
    # Event schema the saga's event topic has registered.
    command_reader = AvroDeserializer(registry)
    event_writer = AvroSerializer(registry, conf=latest)

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
    consumer.subscribe([commands_topic])
    served = 0
    while served < int(count_text):
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        command: dict[str, Any] = command_reader(
            message.value(), SerializationContext(commands_topic, MessageField.VALUE)
        )
        if command["step"] != step or command["kind"] != "action":
            continue
        order = json.loads(command["input"])
        missing = input_fields - set(order)
        if missing:
            raise SystemExit(f"command input lacks contract fields {sorted(missing)}")
        result = {
            "charge_id": f"ch-{order['order_id']}",
            "amount_cents": order["amount_cents"],
            "captured": True,
        }
        # Serializing with the registered result contract refuses a result that breaks it.
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
        producer.produce(
            reply_topic,
            key=command["workflow_id"].encode(),
            value=event_writer(answer, SerializationContext(reply_topic, MessageField.VALUE)),
        )
        producer.flush(30)
        consumer.commit(message, asynchronous=False)  # only once the answer is acknowledged
        served += 1
    consumer.close()


if __name__ == "__main__":
    main(sys.argv[1:])
