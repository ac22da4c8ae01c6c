"""``sagas schemas export``: every deployed version's contracts, and AsyncAPI as JSON or YAML.

No package on PyPI was found to ship the AsyncAPI 2.6 JSON schema (the parsers there
carry generated models and read the schema from files they do not ship), so the
document is checked for the fields AsyncAPI 2.6 requires and for references that resolve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sagas.cli import main
from sagas.cli.contracts import contracts_of
from sagas.engine.versions import compile_versions
from tests.unit.schemas import two_versions

REF = "tests.unit.schemas.two_versions:versions"


def _export(tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "contracts"
    result = CliRunner().invoke(
        main, ["schemas", "export", REF, "--dir", str(out), "--topic-prefix", "prod.", *extra]
    )
    assert result.exit_code == 0, result.output
    return out


def _check_asyncapi_2_6(document: dict[str, Any], folder: Path) -> None:
    """The fields AsyncAPI 2.6 requires, and every reference resolving to something."""
    assert document["asyncapi"] == "2.6.0"
    assert isinstance(document["info"]["title"], str)
    assert document["info"]["title"]
    assert isinstance(document["info"]["version"], str)
    assert document["info"]["version"]
    assert set(document) <= {
        "asyncapi", "id", "info", "servers", "defaultContentType", "channels",
        "components", "tags", "externalDocs",
    }  # fmt: skip
    messages = document["components"]["messages"]
    assert document["channels"]
    for channel in document["channels"].values():
        operations = set(channel) & {"publish", "subscribe"}
        assert operations, channel
        for operation in operations:
            ref = channel[operation]["message"]["$ref"]
            assert ref.startswith("#/components/messages/")
            assert ref.removeprefix("#/components/messages/") in messages
    for message in messages.values():
        assert (folder / message["payload"]["$ref"]).is_file(), message


def test_contracts_of_every_deployed_version_have_subjects_of_their_own() -> None:
    contracts = contracts_of(compile_versions(two_versions.versions), "prod.")
    assert [(c.subject, c.version) for c in contracts] == [
        ("prod.billing.v1.step.charge.input-value", 1),
        ("prod.billing.v1.step.charge.result-value", 1),
        ("prod.billing.v2.step.charge.input-value", 2),
        ("prod.billing.v2.step.charge.result-value", 2),
    ]
    v1_result, v2_result = contracts[1].schema, contracts[3].schema
    assert [f["name"] for f in v1_result["fields"]] == ["charge_id"]
    assert [f["name"] for f in v2_result["fields"]] == ["charge_id", "captured"]


def test_export_writes_every_version_and_a_json_asyncapi_document(tmp_path: Path) -> None:
    out = _export(tmp_path)
    assert (out / "prod.billing.v1.step.charge.result.avsc").is_file()
    assert (out / "prod.billing.v2.step.charge.result.avsc").is_file()
    assert not (out / "asyncapi.yaml").exists()
    document = json.loads((out / "asyncapi.json").read_text())
    _check_asyncapi_2_6(document, out)
    assert document["info"]["version"] == "2"
    assert {"v1.charge.result", "v2.charge.result"} <= set(document["components"]["messages"])
    assert "steps charge." in document["channels"]["prod.queue.payments.commands"]["description"]


def test_export_writes_the_same_document_as_yaml_when_asked(tmp_path: Path) -> None:
    as_json = json.loads((_export(tmp_path / "j") / "asyncapi.json").read_text())
    out = _export(tmp_path / "y", "--format", "yaml")
    assert not (out / "asyncapi.json").exists()
    document = yaml.safe_load((out / "asyncapi.yaml").read_text())
    assert document == as_json
    _check_asyncapi_2_6(document, out)


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["schemas", "export", REF, "--dir", str(tmp_path), "--format", "xml"]
    )
    assert result.exit_code == 2
    assert "'xml' is not one of 'json', 'yaml'" in result.output


@pytest.mark.parametrize("broken", ["info", "channels"])
def test_the_structure_check_refuses_a_document_without_a_required_field(
    tmp_path: Path, broken: str
) -> None:
    out = _export(tmp_path)
    document = json.loads((out / "asyncapi.json").read_text())
    del document[broken]
    with pytest.raises(KeyError):
        _check_asyncapi_2_6(document, out)
