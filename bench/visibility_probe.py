"""A client process of the visibility benchmark, apart from the one that measures.

    python -m bench.visibility_probe memory <bootstrap> <prefix> <workflows>
    python -m bench.visibility_probe load <bootstrap> <prefix> <workflows> <rate> <seconds>

``memory`` runs describe, list, status and result on random held workflows, then reports
the process's peak and current resident memory; ``load`` prints ``ready`` once its client
has asked once (its imports and first connection are behind it), then asks at a fixed
rate (four describes to one list) for a while and reports what it asked and how long
each took. Either prints one JSON line.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench.load import percentile
from bench.visibility_log import CUSTOMERS, Kind, kind_of, workflow_id
from bench.visibility_saga import saga
from sagas.client import SagaClient
from sagas.config import KafkaSettings
from sagas.workflow_search import AttributeFilter, WorkflowSearch


def selective_search(customer: int, status: str = "RUNNING") -> WorkflowSearch:
    """One status filter and one attribute filter, the first page of 100."""
    where = (AttributeFilter("customer_id", "=", f"c-{customer}"),)
    return WorkflowSearch(status=(status,), where=where, limit=100)


def ended_workflow(rng: random.Random, workflows: int) -> int:
    """A random held workflow that has ended."""
    while True:
        n = rng.randrange(workflows)
        if kind_of(n) is not Kind.RUNNING:
            return n


def memory_kb(field: str) -> int:
    """A ``/proc/self/status`` figure, such as ``VmHWM`` (peak resident) or ``VmRSS``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def memory(client: SagaClient, workflows: int) -> dict[str, Any]:
    rng = random.Random(7)
    for _ in range(200):
        client.describe(saga, workflow_id(rng.randrange(workflows)))
    for _ in range(20):
        client.list(saga, selective_search(rng.randrange(CUSTOMERS)))
        client.list(saga, selective_search(rng.randrange(CUSTOMERS), "COMPLETED"))
    for _ in range(50):
        client.status(saga, workflow_id(ended_workflow(rng, workflows)))
        client.result(saga, workflow_id(ended_workflow(rng, workflows)))
    return {"workflows": workflows, "peak_rss_kb": memory_kb("VmHWM"), "rss_kb": memory_kb("VmRSS")}


def load(client: SagaClient, workflows: int, rate: float, seconds: float) -> dict[str, Any]:
    rng = random.Random(11)
    began = time.monotonic()
    describes: list[float] = []
    lists: list[float] = []
    sent = 0
    while (now := time.monotonic()) - began < seconds:
        due = began + sent / rate
        if now < due:
            time.sleep(due - now)
        asked = time.monotonic()
        if sent % 5 == 4:
            client.list(saga, selective_search(rng.randrange(CUSTOMERS)))
            lists.append((time.monotonic() - asked) * 1000)
        else:
            client.describe(saga, workflow_id(rng.randrange(workflows)))
            describes.append((time.monotonic() - asked) * 1000)
        sent += 1
    elapsed = time.monotonic() - began
    return {
        "requests": sent,
        "per_s": sent / elapsed,
        "describe_p99_ms": percentile(describes, 0.99),
        "list_p99_ms": percentile(lists, 0.99),
    }


def main(argv: list[str]) -> int:
    mode, bootstrap, prefix, workflows = argv[0], argv[1], argv[2], int(argv[3])
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    with SagaClient(kafka) as client:
        if mode == "memory":
            figures = memory(client, workflows)
        else:
            # Started beside a measured window, the process's start-up (imports, the first
            # read of the endpoints) would be counted against the queries: the window
            # begins once this says ready.
            client.describe(saga, workflow_id(0))
            print("ready", flush=True)
            figures = load(client, workflows, float(argv[4]), float(argv[5]))
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
