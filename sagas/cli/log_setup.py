"""Where the CLI's logs go: stderr, as text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import click

from sagas.kafka_logs import LOGGER_NAME

LEVELS = ("debug", "info", "warning", "error")
_HANDLER_NAME = "sagas.cli"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


def configure_logging(
    level: str = "info", log_format: str = "text", *, kafka_level: str | None = None
) -> None:
    """Send log records of ``level`` and above to stderr, librdkafka's of ``kafka_level``
    (default: ``level``; ``"off"``: none, as short commands report a Kafka failure as their
    one error line)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Only the handler of an earlier call is replaced: one an embedding program (or a
    # test runner) installed stays.
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    kafka = (kafka_level or level).upper()
    logging.getLogger(LOGGER_NAME).setLevel(logging.CRITICAL + 1 if kafka == "OFF" else kafka)


log_level_option = click.option(
    "--log-level",
    type=click.Choice(LEVELS),
    default="info",
    show_default=True,
    envvar="SAGAS_LOG_LEVEL",
    help="Log records of this level and above (librdkafka's too) [env SAGAS_LOG_LEVEL].",
)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text, or one JSON object per line (time, level, logger, message).",
)
