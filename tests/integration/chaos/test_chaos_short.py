"""The short chaos run on the three-broker cluster: a leader killed, processors and workers
of the trip saga and of its child saga SIGKILLed, scaled and paused past their session
timeout, poison records throughout; the verifier must find every guarantee held, for the
trips and their children, and every fault recovered in seconds."""

from __future__ import annotations

import pytest

from tests.chaos.run import SHORT, run

pytestmark = pytest.mark.cluster

RECOVER_WITHIN_S = 30.0
"""Well under the 45 s a dead static member used to hold its partitions."""


@pytest.mark.timeout(420)
def test_the_short_chaos_run_keeps_every_guarantee() -> None:
    verdict, figures = run(SHORT)
    assert verdict.ok, "\n".join(str(v) for v in verdict.violations[:30])
    assert figures["workflows"] > 50
    assert figures["terminal"] == figures["workflows"]
    children = figures["children"]
    assert children["terminal"] == children["started"] > 0.8 * figures["workflows"]
    # Some children failed (their parents compensated), some completed and were undone.
    assert children["failed"] > 0
    assert children["undone_by_parent"] > 0
    assert figures["poison"]["dead_lettered"] == figures["poison"]["delivered"] == SHORT.poison
    for kind, faults in figures["faults"].items():
        assert faults["never_recovered"] == 0, kind
        assert faults["recover_s"]["max"] <= RECOVER_WITHIN_S, (kind, faults)
