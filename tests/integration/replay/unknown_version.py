"""The flaky order saga at a version its log never ran: folding that log fails.

Declared at a module's top level, as a replay's worker processes import it.
"""

from __future__ import annotations

from sagas import Saga, StepContext, StepKind
from tests.integration.participants import flaky_order

saga = Saga(flaky_order.SAGA_NAME, input=flaky_order.OrderInput, version=2)


@saga.step(kind=StepKind.PIVOT)
async def only(ctx: StepContext[flaky_order.OrderInput]) -> str:
    return "done"
