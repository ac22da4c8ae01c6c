"""The 4-step order saga written for Temporal: a workflow and its activities.

Imported only in the peers' environment (it needs ``temporalio``); the workflow sandbox
re-imports this module, so it holds nothing but the definitions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ActivityError

STEP_TIMEOUT = timedelta(seconds=60)

Step = Callable[[str], Awaitable[str]]


@activity.defn
async def charge(order_id: str) -> str:
    """Charge the order's card (no I/O: the benchmark measures orchestration)."""
    return f"charged:{order_id}"


@activity.defn
async def refund(order_id: str) -> str:
    """Undo :func:`charge`."""
    return f"refunded:{order_id}"


@activity.defn
async def reserve(order_id: str) -> str:
    """Reserve the order's stock."""
    return f"reserved:{order_id}"


@activity.defn
async def release(order_id: str) -> str:
    """Undo :func:`reserve`."""
    return f"released:{order_id}"


@activity.defn
async def ship(order_id: str) -> str:
    """Ship the order."""
    return f"shipped:{order_id}"


@activity.defn
async def notify(order_id: str) -> str:
    """Tell the customer."""
    return f"notified:{order_id}"


ACTIVITIES = [charge, refund, reserve, release, ship, notify]


@workflow.defn(name="OrderSaga")
class OrderSaga:
    """charge → reserve → ship → notify; a failed step undoes the completed ones, latest first."""

    @workflow.run
    async def run(self, order_id: str) -> list[str]:
        """Run the four steps and return their results."""
        forward: list[tuple[Step, Step | None]] = [
            (charge, refund),
            (reserve, release),
            (ship, None),
            (notify, None),
        ]
        results: list[str] = []
        undo: list[Step] = []
        try:
            for step, compensation in forward:
                results.append(
                    await workflow.execute_activity(
                        step, order_id, start_to_close_timeout=STEP_TIMEOUT
                    )
                )
                if compensation is not None:
                    undo.append(compensation)
        except ActivityError:
            # The benchmark's steps never fail; the compensation path is here so that the
            # workflow is the same saga a team would write, not a bare pipeline.
            for compensation in reversed(undo):
                await workflow.execute_activity(
                    compensation, order_id, start_to_close_timeout=STEP_TIMEOUT
                )
            raise
        return results
