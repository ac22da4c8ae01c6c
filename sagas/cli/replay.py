"""``sagas replay`` and ``sagas reset``: rebuild a processor's state from its event log,
compare a candidate definition with the recorded decisions, or start the processor over."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from sagas.cli.loading import bootstrap_option, load_saga, prefix_option, reachable_kafka
from sagas.errors import SagaError

output_option = click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Lines for people, or one JSON summary for scripts.",
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=Path(".sagas-state"),
    show_default=True,
    help="The processor's state directory (as given to `sagas worker`).",
)


class _Progress:
    """Records read and records/s on stderr, rewritten in place, only when it is a terminal."""

    def __init__(self, what: str) -> None:
        from processors.log_reading import RateMeter

        self._what = what
        self._meter = RateMeter()
        self._shown = False
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        rate = self._meter.rate(done)
        click.echo(f"\r{self._what}: {done:,}/{total:,} records, {rate:,.0f} records/s", err=True,
                   nl=False)  # fmt: skip
        self._shown = True

    def close(self) -> None:
        if self._shown:
            click.echo(err=True)


@click.command()
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@click.option(
    "--shadow",
    is_flag=True,
    help="Treat MODULE:SAGA as a candidate definition: report each workflow whose recorded "
    "decisions it would not take, write nothing (exit 1 on any: a deploy gate).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Compare the rebuilt states with the live ones (the state directory, else the "
    "changelog) and print the differences; write nothing (exit 1 on any).",
)
@click.option(
    "--retention",
    type=click.IntRange(min=1),
    default=None,
    help="The workers' --retention, if they were given one: ended workflows past it are"
    " left out, as the processor removed them (default: the saga's own retention).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes that fold partitions side by side (default: one per core, or"
    " one per partition when there are at most twice as many; 1 folds in this process).",
)
@state_dir_option
@output_option
@bootstrap_option
@prefix_option
def replay(
    saga_ref: str, shadow: bool, verify: bool, retention: int | None, jobs: int | None,
    state_dir: Path, output: str, bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Rebuild the saga processor's state of MODULE:SAGA from its event log.

    Reads <saga>.events from the start (committed records only) and folds each
    workflow's events: no decision is taken again, no command or answer is sent. The
    local store in --state-dir and the changelog topic are rewritten to match, and the
    processor group's offsets are set to the end replayed to. Refused while the
    processor group has live members. Serves a lost changelog, or a corrected fold.
    """
    if shadow and verify:
        raise click.UsageError("choose one of --shadow and --verify")
    versions = load_saga(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    progress = _Progress("shadow replay" if shadow else "replay")
    kept = timedelta(seconds=retention) if retention is not None else None
    try:
        if shadow:
            _shadow(versions, kafka, progress, output)
        elif verify:
            _verify(versions, kafka, state_dir, progress, output, kept, jobs)
        else:
            _replay(versions, kafka, state_dir, progress, output, kept, jobs)
    except SagaError as exc:
        progress.close()
        raise click.ClickException(str(exc)) from exc


def _replay(
    versions: Any, kafka: Any, state_dir: Path, progress: _Progress, output: str,
    retention: timedelta | None, jobs: int | None,
) -> None:  # fmt: skip
    from processors.replay import replay as rebuild

    report = rebuild(versions, kafka, state_dir, progress=progress, retention=retention, jobs=jobs)
    progress.close()
    if output == "json":
        click.echo(json.dumps({
            "saga": report.saga, "group": report.group, "events": report.events,
            "seconds": round(report.seconds, 3),
            "events_per_second": round(report.events_per_second),
            "partitions": [asdict(p) for p in report.partitions],
        }))  # fmt: skip
        return
    for p in report.partitions:
        click.echo(
            f"partition {p.partition}: {p.events} events, {p.workflows} workflows"
            f" ({p.parked} parked), {p.changelog_records} changelog records written,"
            f" group at offset {p.end_offset}"
        )
    click.echo(
        f"rebuilt {report.saga!r} from {report.events} events in {report.seconds:.2f}s"
        f" ({report.events_per_second:,.0f} events/s); group {report.group} set to the end"
    )


def _verify(
    versions: Any, kafka: Any, state_dir: Path, progress: _Progress, output: str,
    retention: timedelta | None, jobs: int | None,
) -> None:  # fmt: skip
    from processors.replay import differences, fold_log, live_states

    ranges, rebuilt = fold_log(versions, kafka, progress, retention=retention, jobs=jobs)
    progress.close()
    found = differences(
        rebuilt, live_states(versions, kafka, state_dir, [r.partition for r in ranges])
    )
    workflows = sum(len(p.states) for p in rebuilt)
    if output == "json":
        click.echo(json.dumps({
            "saga": versions.name, "workflows": workflows,
            "differences": [asdict(d) for d in found],
        }))  # fmt: skip
    else:
        for d in found:
            click.echo(f"{d.workflow_id} (partition {d.partition}): {', '.join(d.fields)}")
        click.echo(f"{len(found)} of {workflows} workflow(s) differ from the live state")
    if found:
        sys.exit(1)


def _shadow(versions: Any, kafka: Any, progress: _Progress, output: str) -> None:
    from processors.shadow import describe, shadow

    report = shadow(versions, kafka, progress=progress)
    progress.close()
    if output == "json":
        click.echo(json.dumps({
            "saga": report.saga, "workflows": report.workflows, "events": report.events,
            "differences": [
                {"workflow_id": d.workflow_id, "trigger": asdict(d.trigger),
                 "recorded": None if d.recorded is None else asdict(d.recorded),
                 "candidate": None if d.candidate is None else asdict(d.candidate),
                 "reason": d.reason}
                for d in report.differences
            ],
        }, default=str))  # fmt: skip
    else:
        for d in report.differences:
            click.echo(f"{d.workflow_id}: after {describe(d.trigger)}: {d.reason}")
        click.echo(
            f"{len(report.differences)} of {report.workflows} workflow(s) would be decided"
            " differently"
        )
    if report.differences:
        sys.exit(1)


@click.command()
@click.argument("saga_ref", metavar="MODULE[:SAGA]")
@click.option(
    "--to-datetime",
    default=None,
    metavar="ISO-TIME",
    help="Reset to the first record at or after this time (e.g. 2026-01-31T12:00:00Z)"
    " instead of the log start.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be reset; change nothing.")
@state_dir_option
@output_option
@bootstrap_option
@prefix_option
def reset(
    saga_ref: str, to_datetime: str | None, dry_run: bool, state_dir: Path, output: str,
    bootstrap_servers: str | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    """Make the saga processor of MODULE:SAGA start over, like Kafka Streams' reset tool.

    Moves the processor group's offsets on <saga>.events to the log start (or
    --to-datetime), deletes its local stores in --state-dir and empties its changelog
    (a tombstone per key),
    so its next start processes the log again. Refused while the group has live members.
    """
    from processors.processor_reset import reset_processor

    to: Any = "earliest"
    if to_datetime is not None:
        try:
            to = datetime.fromisoformat(to_datetime)
        except ValueError as exc:
            raise click.BadParameter(
                f"{to_datetime!r} is not an ISO time", param_hint="--to-datetime"
            ) from exc
        if to.tzinfo is None:
            to = to.replace(tzinfo=UTC)
    versions = load_saga(saga_ref)
    kafka = reachable_kafka(bootstrap_servers, topic_prefix)
    try:
        plan = reset_processor(versions, kafka, state_dir, to=to, dry_run=dry_run)
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc
    if output == "json":
        click.echo(json.dumps({
            "dry_run": dry_run, "group": plan.group, "topic": plan.events_topic, "to": plan.to,
            "committed": plan.committed, "store_paths": [str(p) for p in plan.store_paths],
            "changelog_topic": plan.changelog_topic, "changelog_records": plan.changelog_records,
            "offsets": [asdict(change) for change in plan.offsets],
        }))  # fmt: skip
        return
    verb = "would" if dry_run else "did"
    click.echo(f"group {plan.group}: {verb} move offsets of {plan.events_topic} to {plan.to}"
               f" (committed now: {plan.committed})")  # fmt: skip
    for path in plan.store_paths:
        click.echo(f"{verb} delete store {path}")
    held = sum(plan.changelog_records.values())
    click.echo(f"{verb} tombstone every key of {plan.changelog_topic} ({held} record(s) now)")
    for change in plan.offsets:
        click.echo(f"{change.topic}[{change.partition}]: {change.before} -> {change.after}")
