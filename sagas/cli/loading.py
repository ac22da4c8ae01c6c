"""Find the saga a command line names: ``module``, ``module:attribute`` or a bare saga name."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import click

from sagas.config import KafkaSettings
from sagas.definition import Saga
from sagas.engine.versions import SagaVersions, compile_versions, module_versions
from sagas.errors import SagaError

F = TypeVar("F", bound=Callable[..., Any])
_CONNECT_TIMEOUT = "sagas.connect_timeout"


def load_saga(ref: str) -> SagaVersions:
    """Import ``MODULE`` or ``MODULE:ATTRIBUTE`` and compile the versions of the saga it names.

    A module, or a saga of it, stands for every version of that saga the module
    declares, so that a worker serves each workflow on the version it started with;
    a list or tuple of sagas stands for exactly the versions it holds.
    """
    module_name, sep, attribute = ref.partition(":")
    if not module_name or (sep and not attribute):
        raise click.BadParameter(
            f"{ref!r} is not MODULE or MODULE:ATTRIBUTE (e.g. shop.order_saga:saga)",
            param_hint="SAGA",
        )
    # Like uvicorn: the user's package is importable from the directory the command runs in.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {exc}", param_hint="SAGA"
        ) from exc
    if sep and not hasattr(module, attribute):
        raise click.BadParameter(
            f"module {module_name!r} has no attribute {attribute!r}", param_hint="SAGA"
        )
    obj: Any = getattr(module, attribute) if sep else module
    try:
        if isinstance(obj, ModuleType):
            return compile_versions(module_versions(obj))
        if isinstance(obj, Saga):
            return compile_versions(module_versions(module, obj.name))
        return compile_versions(obj)
    except SagaError as exc:
        raise click.ClickException(str(exc)) from exc


def saga_name(ref: str) -> str | SagaVersions:
    """A bare saga name stays a name; ``module:attribute`` is loaded (inputs get validated)."""
    return load_saga(ref) if ":" in ref else ref


def kafka_settings(bootstrap_servers: str | None, topic_prefix: str | None) -> KafkaSettings:
    """Settings from ``SAGAS_*`` variables, overridden by the command's options."""
    overrides: dict[str, str] = {}
    if bootstrap_servers is not None:
        overrides["bootstrap_servers"] = bootstrap_servers
    if topic_prefix is not None:
        overrides["topic_prefix"] = topic_prefix
    context = click.get_current_context(silent=True)
    timeout = context.meta.get(_CONNECT_TIMEOUT) if context is not None else None
    if timeout is not None:
        overrides["connect_timeout"] = timeout
    try:
        return KafkaSettings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.ClickException(f"invalid Kafka settings: {exc}") from exc


def reachable_kafka(bootstrap_servers: str | None, topic_prefix: str | None) -> KafkaSettings:
    """:func:`kafka_settings`, once a broker has answered (else the command fails with
    one line and exit code 4 within the connect timeout)."""
    from topics.reachability import check_reachable

    kafka = kafka_settings(bootstrap_servers, topic_prefix)
    check_reachable(kafka)
    return kafka


def _remember_timeout(context: click.Context, param: click.Parameter, value: float | None) -> None:
    if value is not None:
        context.meta[_CONNECT_TIMEOUT] = value


def bootstrap_option(command: F) -> F:
    """``--bootstrap-servers`` and ``--connect-timeout`` of a command that talks to Kafka."""
    command = click.option(
        "--connect-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        expose_value=False,
        callback=_remember_timeout,
        help="Seconds to wait for a broker before giving up [env SAGAS_CONNECT_TIMEOUT; 10].",
    )(command)
    return click.option(
        "--bootstrap-servers",
        default=None,
        help="Kafka host:port list [env SAGAS_BOOTSTRAP_SERVERS].",
    )(command)


prefix_option = click.option(
    "--topic-prefix", default=None, help="Prefix of every topic name [env SAGAS_TOPIC_PREFIX]."
)
