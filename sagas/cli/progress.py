"""A spinner on stderr while a command waits or reads a log, shown only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    """What a waiting command tells the person watching."""

    def update(self, message: str) -> None:
        """Replace the text beside the spinner."""


class _Silent:
    def update(self, message: str) -> None:
        """Nothing is shown when stderr is not a terminal (pipes, logs, tests)."""


@contextmanager
def progress(message: str) -> Iterator[Progress]:
    """Show ``message`` with a spinner on stderr until the block ends, if stderr is a TTY."""
    if not sys.stderr.isatty():
        yield _Silent()
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(message) as status:

        class _Shown:
            def update(self, text: str) -> None:
                status.update(text)

        yield _Shown()
