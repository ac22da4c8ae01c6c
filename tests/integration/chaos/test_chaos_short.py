"""The short chaos run on the three-broker cluster: a leader killed, processors and workers
SIGKILLed, scaled and paused past their session timeout, poison records throughout; the
verifier must find every guarantee held, and every fault recovered in seconds."""

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
    assert figures["poison"]["dead_lettered"] == figures["poison"]["delivered"] == SHORT.poison
    for kind, faults in figures["faults"].items():
        assert faults["never_recovered"] == 0, kind
        assert faults["recover_s"]["max"] <= RECOVER_WITHIN_S, (kind, faults)
