"""``sagas schemas``: export a saga's step contracts for other teams, and gate changes in CI."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import click

from sagas.cli.contracts import check_contracts, contracts_of
from sagas.cli.loading import kafka_settings, load_saga, prefix_option
from sagas.errors import SagaError

INCOMPATIBLE_EXIT_CODE = 3
"""Exit code of ``sagas schemas check`` when a contract breaks its subject's rule."""

REGISTRY_TIMEOUT_S = 5.0

output_option = click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Plain lines for people, or one JSON document for scripts.",
)
registry_option = click.option(
    "--schema-registry-url",
    envvar="SAGAS_SCHEMA_REGISTRY_URL",
    default=None,
    help="Confluent-compatible schema registry [env SAGAS_SCHEMA_REGISTRY_URL].",
)


@click.group()
def schemas() -> None:
    """Typed contracts (Avro) of a saga's step inputs, results and signals."""


@schemas.command("export")
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to write the .avsc files and the AsyncAPI document into (created if missing).",
)
@click.option(
    "--format",
    "document_format",
    type=click.Choice(["json", "yaml"]),
    default="json",
    show_default=True,
    help="The AsyncAPI document as asyncapi.json or asyncapi.yaml.",
)
@prefix_option
@output_option
def schemas_export(
    saga_ref: str, directory: Path, document_format: str, topic_prefix: str | None, output: str
) -> None:
    """Write MODULE:SAGA's contracts (.avsc) of every version, the envelopes and an AsyncAPI
    2.6 document."""
    from schemas.asyncapi import asyncapi_document
    from topics.naming import TopicNames

    versions = load_saga(saga_ref)
    prefix = kafka_settings(None, topic_prefix).topic_prefix
    try:
        contracts = contracts_of(versions, prefix)
        names = TopicNames(versions.name, prefix)
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for envelope in ("command.avsc", "event.avsc"):
        source = resources.files("schemas").joinpath(envelope)
        with resources.as_file(source) as path:
            shutil.copyfile(path, directory / envelope)
        written.append(directory / envelope)
    for contract in contracts:
        target = directory / contract.file_name
        target.write_text(json.dumps(contract.schema, indent=2) + "\n")
        written.append(target)
    document = asyncapi_document(
        versions.name,
        version=versions.newest.version,
        events_topic=names.events,
        command_topics={queue: names.commands(queue) for queue in sorted(versions.queues)},
        contracts=contracts,
    )
    target = directory / f"asyncapi.{document_format}"
    if document_format == "yaml":
        import yaml

        target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    else:
        target.write_text(json.dumps(document, indent=2) + "\n")
    written.append(target)
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "saga": versions.name,
                    "files": [str(p) for p in written],
                    "subjects": [c.subject for c in contracts],
                }
            )
        )
        return
    for path in written:
        click.echo(f"wrote    {path}")


@schemas.command("check")
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@registry_option
@prefix_option
@output_option
def schemas_check(
    saga_ref: str, schema_registry_url: str | None, topic_prefix: str | None, output: str
) -> None:
    """Check MODULE:SAGA's contracts against the registry, for CI.

    Exit codes: 0 when every contract may be registered (compatible, or a new
    subject); 3 when one breaks its subject's compatibility rule; 1 when the
    registry cannot be asked; 2 for a usage error.
    """
    from schemas.registry import SchemaRegistryClient

    versions = load_saga(saga_ref)
    settings = kafka_settings(None, topic_prefix)
    url = schema_registry_url or settings.schema_registry_url
    if not url:
        raise click.UsageError(
            "no schema registry: set SAGAS_SCHEMA_REGISTRY_URL or pass --schema-registry-url"
        )
    try:
        registry = SchemaRegistryClient(url, timeout_s=REGISTRY_TIMEOUT_S)
        verdicts = check_contracts(registry, contracts_of(versions, settings.topic_prefix))
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    broken = [v for v in verdicts if v.compatible is False]
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "saga": versions.name,
                    "compatible": not broken,
                    "subjects": [
                        {"subject": v.subject, "compatible": v.compatible} for v in verdicts
                    ],
                }
            )
        )
    else:
        for verdict in verdicts:
            word = {True: "ok", False: "BREAKS", None: "new"}[verdict.compatible]
            click.echo(f"{word:<8} {verdict.subject}")
    if broken:
        if output == "text":
            click.echo(
                f"{len(broken)} contract(s) of saga {versions.name!r} are incompatible with "
                "what the schema registry holds",
                err=True,
            )
        raise SystemExit(INCOMPATIBLE_EXIT_CODE)
