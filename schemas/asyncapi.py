"""An AsyncAPI 2.6 document of a saga's topics and messages, for teams that serve its steps.

It names the command topic of every queue (which participants consume) and the saga's
event topic (where they answer), both keyed by workflow id, and refers to the Avro
files beside it: the envelopes (``command.avsc``, ``event.avsc``) and each step's
input and result contracts (see :mod:`schemas.step_contracts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.step_contracts import Contract

ASYNCAPI_VERSION = "2.6.0"
_AVRO_FORMAT = "application/vnd.apache.avro;version=1.9.0"
_KEY = {"type": "string", "description": "The workflow id as UTF-8 bytes."}


def asyncapi_document(
    saga: str,
    *,
    version: int,
    events_topic: str,
    command_topics: dict[str, str],
    contracts: Sequence[Contract],
) -> dict[str, Any]:
    """The AsyncAPI document; ``command_topics`` maps each queue to its topic.

    ``version`` (the document's own version) is the saga's newest; ``contracts`` may
    hold those of every deployed version.
    """
    messages: dict[str, Any] = {
        "Command": _message("Command", "command.avsc", "A request to run or undo one step."),
        "Event": _message(
            "Event",
            "event.avsc",
            "One record of the saga's event log; a participant answers a command with a "
            "step_succeeded/step_failed (or compensation_*) event repeating its saga, version, "
            "step and attempt.",
        ),
    }
    for contract in contracts:
        where = {
            "input": "Command.input (JSON text) of the step's commands",
            "result": "Event.payload (JSON text) of the step's step_succeeded answer",
            "signal": "Event.payload (JSON text) of the signal",
        }[contract.role]
        messages[_message_id(contract)] = {
            **_message(_message_id(contract), contract.file_name, f"The contract of {where}."),
            "x-schema-registry-subject": contract.subject,
        }
    channels: dict[str, Any] = {}
    for queue, topic in sorted(command_topics.items()):
        steps = dict.fromkeys(c.name for c in contracts if c.role == "input" and c.queue == queue)
        channels[topic] = {
            "description": f"Commands of queue {queue!r}: steps "
            + ", ".join(steps)
            + ". Consume with isolation.level=read_committed.",
            "subscribe": {
                "operationId": f"receive_{_identifier(queue)}_commands",
                "message": {"$ref": "#/components/messages/Command"},
            },
            "bindings": {"kafka": {"key": _KEY, "bindingVersion": "0.4.0"}},
        }
    channels[events_topic] = {
        "description": "The saga's event log. Answer commands here, keyed by workflow id and "
        "partitioned with murmur2 (the Java client's default partitioner).",
        "publish": {
            "operationId": "answer_commands",
            "message": {"$ref": "#/components/messages/Event"},
        },
        "bindings": {"kafka": {"key": _KEY, "bindingVersion": "0.4.0"}},
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"Saga {saga}",
            "version": str(version),
            "description": "Topics and messages of a kafka-sagas saga, for its participants. "
            "Messages named v<version>.<step>.input, .result or .signal are the typed "
            "contracts of the JSON texts inside the envelopes, per saga version (a "
            "command's version field names the one that applies).",
        },
        "defaultContentType": "application/octet-stream",
        "channels": channels,
        "components": {"messages": messages},
    }


def _message(name: str, file_name: str, summary: str) -> dict[str, Any]:
    return {
        "name": name,
        "summary": summary,
        "schemaFormat": _AVRO_FORMAT,
        "contentType": "application/octet-stream",
        "payload": {"$ref": f"./{file_name}"},
    }


def _message_id(contract: Contract) -> str:
    return f"v{contract.version}.{contract.name}.{contract.role}"


def _identifier(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
