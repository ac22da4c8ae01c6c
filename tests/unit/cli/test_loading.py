"""What a command line's saga reference stands for: every version its module declares."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sagas.cli import main
from sagas.cli.loading import load_saga

LINES = "tests.unit.cli.saga_lines"


@pytest.mark.parametrize("attribute", ["v1", "v2", "latest"])
def test_one_saga_of_a_module_stands_for_every_version_of_it(attribute: str) -> None:
    versions = load_saga(f"{LINES}:{attribute}")
    assert versions.name == "job"
    assert sorted(versions.plans) == [1, 2]
    assert versions.newest.version == 2
    assert [node.name for node in versions.plans[2].nodes] == ["work", "report"]


def test_a_list_stands_for_exactly_the_versions_it_holds() -> None:
    assert sorted(load_saga(f"{LINES}:newest_only").plans) == [2]
    assert sorted(load_saga("tests.unit.schemas.two_versions:versions").plans) == [1, 2]


def test_a_module_of_one_saga_stands_for_all_its_versions() -> None:
    versions = load_saga("examples.return_saga")
    assert (versions.name, sorted(versions.plans)) == ("returns", [1, 2])
    assert sorted(load_saga("examples.order_saga").plans) == [1]


def test_a_module_of_several_sagas_asks_for_one() -> None:
    with pytest.raises(click.ClickException) as raised:
        load_saga(LINES)
    assert raised.value.message.startswith(
        f"module {LINES!r} declares several sagas (audit, job): name one, e.g. "
        f"{LINES}:audit, {LINES}:v1"
    )
    assert sorted(load_saga(f"{LINES}:audit").plans) == [1]


def test_one_version_declared_twice_is_an_error_naming_module_saga_and_version() -> None:
    for ref in ["tests.unit.cli.same_version_twice", "tests.unit.cli.same_version_twice:v1"]:
        with pytest.raises(click.ClickException) as raised:
            load_saga(ref)
        assert raised.value.message == (
            "module 'tests.unit.cli.same_version_twice' declares version 2 of saga 'job' "
            "twice (v2 and old_v2) (saga=job)"
        )


def test_the_worker_refuses_it_in_one_line_before_reaching_for_kafka() -> None:
    result = CliRunner().invoke(
        main,
        ["worker", "tests.unit.cli.same_version_twice:v2", "--bootstrap-servers", "127.0.0.1:1"],
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        "Error: module 'tests.unit.cli.same_version_twice' declares version 2 of saga 'job' "
        "twice (v2 and old_v2) (saga=job)"
    ]


@pytest.mark.parametrize("ref", ["examples.return_saga", "examples.return_saga:v1"])
def test_schemas_export_of_a_module_has_every_version(tmp_path: Path, ref: str) -> None:
    out = tmp_path / "contracts"
    result = CliRunner().invoke(main, ["schemas", "export", ref, "--dir", str(out)])
    assert result.exit_code == 0, result.output
    names = {path.name for path in out.iterdir()}
    assert any("returns.v1.step.notify_customer" in name for name in names), names
    assert any("returns.v2.step.hold_restock_slot" in name for name in names), names
    assert not any("returns.v2.step.notify_customer" in name for name in names), names
    assert json.loads(next(out.glob("*.json")).read_text())


def test_a_reference_that_is_not_one_says_what_one_is() -> None:
    for ref in [":v1", f"{LINES}:"]:
        with pytest.raises(click.BadParameter, match="is not MODULE or MODULE:ATTRIBUTE"):
            load_saga(ref)
    with pytest.raises(click.BadParameter, match="has no attribute 'v3'"):
        load_saga(f"{LINES}:v3")


def test_the_worker_help_says_what_a_module_serves() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0, result.output
    assert "worker [OPTIONS] MODULE[:SAGA]" in result.output
    assert "serves every version of that saga" in result.output
    assert "MODULE:LIST serves exactly the versions in the list" in result.output
