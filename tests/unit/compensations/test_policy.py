from hypothesis import given
from hypothesis import strategies as st

from compensations import Recovery, compensation_waves, recovery_for, retry_compensation


def test_reverse_order_with_a_group_as_one_wave() -> None:
    group = {"f": "g", "h": "g", "c": "g"}
    waves = compensation_waves(["a", "f", "h", "c", "z"], group)
    assert waves == [("z",), ("c", "h", "f"), ("a",)]


@st.composite
def completions(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None]]:
    """Steps in completion order: singles and runs of parallel groups."""
    order: list[str] = []
    group_of: dict[str, str | None] = {}
    for i, size in enumerate(draw(st.lists(st.integers(0, 4), max_size=8))):
        if size == 0:
            order.append(f"s{i}")
            group_of[f"s{i}"] = None
        else:
            members = [f"g{i}m{j}" for j in range(size)]
            order.extend(draw(st.permutations(members)))
            group_of.update({m: f"g{i}" for m in members})
    return order, group_of


@given(completions())
def test_every_completed_step_once_latest_first_groups_together(
    case: tuple[list[str], dict[str, str | None]],
) -> None:
    order, group_of = case
    waves = compensation_waves(order, group_of)
    flat = [step for wave in waves for step in wave]
    assert sorted(flat) == sorted(order)
    assert flat == order[::-1]
    for wave in waves:
        assert len({group_of[s] for s in wave}) == 1
        if len(wave) > 1:
            assert group_of[wave[0]] is not None


def test_recovery_and_compensation_retries() -> None:
    assert recovery_for(committed=False, failed_step_retriable=False) is Recovery.COMPENSATE
    assert recovery_for(committed=True, failed_step_retriable=False) is Recovery.FAIL
    assert recovery_for(committed=False, failed_step_retriable=True) is Recovery.FAIL
    assert retry_compensation(attempt=1, non_retryable=False, allows_attempt=lambda n: n <= 2)
    assert not retry_compensation(attempt=2, non_retryable=False, allows_attempt=lambda n: n <= 2)
    assert not retry_compensation(attempt=1, non_retryable=True, allows_attempt=lambda n: True)
