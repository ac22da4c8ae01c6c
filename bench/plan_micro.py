"""Micro-benchmark of the saga processor's hot path: ``Plan.handle`` per event.

Runs many 4-step order workflows through the plan by hand (start, then each
step's answer) and prints microseconds per handled event, plus the cost of the
state's ``to_bytes``/``from_bytes`` that the store pays per event. Times are CPU
time of this process, so that other load on the machine does not inflate them.

    .venv/bin/python bench/plan_micro.py [workflows]
"""

from __future__ import annotations

import sys
import time

from examples.order_saga import saga
from sagas.engine import compile_saga
from sagas.engine.state import WorkflowState
from sagas.events import Event, EventType, Origin

STEPS = ("charge_payment", "reserve_inventory", "create_shipment", "notify_customer")
INPUT = '{"order_id":"o","customer_email":"a@b.c","amount_cents":100,"sku":"mug","quantity":1}'
RESULT = '{"ref":"r-123456"}'


def main(workflows: int) -> None:
    """Handle ``workflows`` complete order workflows and print the per-event cost."""
    plan = compile_saga(saga)
    inputs: list[list[Event]] = []
    for i in range(workflows):
        wf = f"wf-{i}"
        events = [
            Event(
                f"{wf}-s",
                wf,
                "order",
                0,
                EventType.START_REQUESTED,
                Origin.CLIENT,
                0,
                payload=INPUT,
            )
        ]
        events += [
            Event(
                f"{wf}-{n}",
                wf,
                "order",
                1,
                EventType.STEP_SUCCEEDED,
                Origin.WORKER,
                0,
                step=step,
                attempt=1,
                payload=RESULT,
            )
            for n, step in enumerate(STEPS)
        ]
        inputs.append(events)
    handled = 0
    encode_s = decode_s = 0.0
    began = time.process_time()
    for events in inputs:
        state = None
        for event in events:
            state = plan.handle(state, event, 1_000).state
            handled += 1
    handle_s = time.process_time() - began
    if state is None or state.status.value != "COMPLETED":
        raise SystemExit(f"the benchmark workflow did not complete: {state}")
    for _ in range(workflows):
        t0 = time.process_time()
        data = state.to_bytes()
        t1 = time.process_time()
        WorkflowState.from_bytes(data)
        encode_s += t1 - t0
        decode_s += time.process_time() - t1
    print(f"{handled} events in {handle_s:.3f} s: {handle_s / handled * 1e6:.1f} us per event")
    print(
        f"state to_bytes {encode_s / workflows * 1e6:.1f} us, "
        f"from_bytes {decode_s / workflows * 1e6:.1f} us ({len(data)} bytes)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
