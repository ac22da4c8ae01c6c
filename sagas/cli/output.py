"""``--output text|json`` of the reading commands, and writing JSON the same way everywhere."""

from __future__ import annotations

import json
from typing import Any

import click

output_option = click.option(
    "--output",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Print text for people or JSON for programs.",
)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (values JSON lacks become strings)."""
    click.echo(json.dumps(data, indent=2, default=str))
