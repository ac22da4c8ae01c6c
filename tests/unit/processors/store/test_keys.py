"""The store's key layout: prefixes that never overlap, and the visibility index bounds a
list request scans between, sorting newest first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.store import keys
from processors.store.keys import (
    attribute_key,
    attribute_prefix,
    entry_end,
    handled_key,
    indexed_workflow_id,
    run_key,
    runs_prefix,
    start_key,
    started_bound,
    status_key,
    status_prefix,
    summary_key_of,
)

PREFIXES = {
    name: value
    for name, value in vars(keys).items()
    if name.endswith(("_PREFIX", "_INDEX")) and isinstance(value, bytes)
}
STARTED = st.integers(0, 2**48)
WORKFLOW_IDS = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1
)


def test_no_prefix_starts_another() -> None:
    assert len(PREFIXES) == 9
    for name, prefix in PREFIXES.items():
        for other_name, other in PREFIXES.items():
            if name != other_name:
                assert not other.startswith(prefix), f"{other_name} starts with {name}"


@given(started=STARTED, bound=STARTED, wid=WORKFLOW_IDS)
def test_an_entry_sorts_before_the_bound_of_any_earlier_instant(
    started: int, bound: int, wid: str
) -> None:
    for prefix in (keys.START_INDEX, status_prefix("running"), attribute_prefix("n", 3)):
        entry = prefix + start_key(started, wid)[len(keys.START_INDEX) :]
        assert (entry < started_bound(prefix, bound)) == (started > bound)


@given(started=STARTED, wid=WORKFLOW_IDS, other=WORKFLOW_IDS, later=STARTED)
def test_the_end_of_an_entry_is_past_it_and_before_every_entry_after_it(
    started: int, wid: str, other: str, later: int
) -> None:
    end = entry_end(keys.START_INDEX, started, wid)
    entry = start_key(started, wid)
    assert entry < end
    for after in (start_key(started, other), start_key(later, other)):
        if after > entry:
            assert after >= end


@given(started=STARTED, wid=WORKFLOW_IDS, value=st.one_of(st.integers(), st.text()))
def test_every_index_entry_leads_back_to_its_summary_and_workflow(
    started: int, wid: str, value: int | str
) -> None:
    summary = start_key(started, wid)
    entries = {
        keys.START_INDEX: summary,
        status_prefix("completed"): status_key("completed", started, wid),
        attribute_prefix("customer", value): attribute_key("customer", value, started, wid),
    }
    for prefix, key in entries.items():
        assert summary_key_of(key, prefix) == summary
        assert indexed_workflow_id(key, prefix) == wid


def test_each_dead_letter_position_has_its_own_handled_key() -> None:
    positions = [(0, 1), (1, 0), (0, 10), (10, 0), (1, 1)]
    assert len({handled_key(p) for p in positions}) == len(positions)
    assert all(handled_key(p).startswith(keys.HANDLED_PREFIX) for p in positions)


@given(wid=WORKFLOW_IDS, other=WORKFLOW_IDS, run_id=st.text(min_size=1))
def test_the_runs_of_one_workflow_are_never_read_as_another_s(
    wid: str, other: str, run_id: str
) -> None:
    assert run_key(wid, run_id).startswith(runs_prefix(wid))
    if other != wid:
        assert not run_key(other, run_id).startswith(runs_prefix(wid))
