"""How many worker processes a replay folds in by default, given the cores; how the
partitions are dealt to them; and where the workers import the saga's definition from."""

from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel

from examples import billing_saga
from processors import replay
from processors.log_reading import DeadLetterIndex, PartitionRange
from processors.partition_workers import (
    FoldJob,
    load_versions,
    partition_shares,
)
from processors.replay import default_workers
from sagas import Saga, StepContext, StepKind
from sagas.config import KafkaSettings
from sagas.engine.versions import compile_versions, declaring_modules
from sagas.errors import DefinitionError


@pytest.mark.parametrize(
    ("cores", "partitions", "workers"),
    [
        (2, 3, 3),  # side by side: no core idles while the other folds the third
        (2, 4, 4),
        (2, 2, 2),
        (2, 1, 2),  # fold_log folds a single partition in its own process anyway
        (2, 5, 2),  # beyond twice the cores, one per core: each holds a partition's fold
        (2, 12, 2),
        (8, 12, 12),
        (8, 24, 8),
    ],
)
def test_default_workers(
    monkeypatch: pytest.MonkeyPatch, cores: int, partitions: int, workers: int
) -> None:
    monkeypatch.setattr(replay.os, "cpu_count", lambda: cores)
    assert default_workers(partitions) == workers


class _Input(BaseModel):
    n: int = 0


def _with_one_step(saga: Saga[_Input]) -> Saga[_Input]:
    @saga.step(kind=StepKind.PIVOT)
    def only(ctx: StepContext[_Input]) -> int:
        return ctx.input.n

    return saga


# Declared at this module's top level, as a replay's workers can import it.
declared = _with_one_step(Saga("fold_workers_declared", input=_Input))
declared_v2 = declared.derive(version=2)


def _job(versions: tuple[int, ...], modules: tuple[str, ...] = (__name__,)) -> FoldJob:
    return FoldJob(
        "fold_workers_declared", modules, versions, KafkaSettings(), "t", DeadLetterIndex({}, {}),
        {0: 0}, None, 0,
    )  # fmt: skip


def test_a_saga_declared_at_a_modules_top_level_is_imported_from_it() -> None:
    versions = compile_versions([declared, declared_v2])
    assert declaring_modules(versions) == (__name__,)
    assert declaring_modules(compile_versions(billing_saga.saga)) == ("examples.billing_saga",)


def test_a_saga_declared_in_a_function_has_no_module_to_import_it_from() -> None:
    local = _with_one_step(Saga("fold_workers_declared", input=_Input))
    assert local.module == __name__
    # Its module declares another object under that name and version: not this one.
    assert declaring_modules(compile_versions(local)) is None
    assert (
        declaring_modules(compile_versions(_with_one_step(Saga("nowhere", input=_Input)))) is None
    )


def test_a_worker_loads_the_versions_the_job_names() -> None:
    loaded = load_versions(pickle.loads(pickle.dumps(_job((1, 2)))))
    assert loaded.name == "fold_workers_declared"
    assert list(loaded.plans) == [1, 2]
    assert list(load_versions(_job((2,))).plans) == [2]


def test_a_version_the_modules_no_longer_declare_is_one_clear_error() -> None:
    with pytest.raises(DefinitionError) as raised:
        load_versions(_job((1, 3)))
    assert str(raised.value).startswith(
        f"modules {__name__} do not declare version(s) [3] of saga 'fold_workers_declared'"
    )


def test_partitions_are_dealt_largest_first_to_the_least_loaded_worker() -> None:
    sizes = {0: 500, 1: 900, 2: 400, 3: 450, 4: 100}
    ranges = [PartitionRange(p, 1000, 1000 + n) for p, n in sizes.items()]
    shares = partition_shares(ranges, 2)
    # 900 | 500 -> 900 | 500+450 -> 900+400 | 950 -> 1300 | 950+100.
    assert [[part.partition for part in share] for share in shares] == [[1, 2], [0, 3, 4]]
    assert sorted(p.partition for share in shares for p in share) == sorted(sizes)


def test_no_worker_gets_an_empty_share() -> None:
    ranges = [PartitionRange(p, 0, 10) for p in range(3)]
    assert [len(share) for share in partition_shares(ranges, 8)] == [1, 1, 1]
