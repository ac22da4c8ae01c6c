"""Installs the peers' tools outside the repository: the Temporal dev server and a Python env.

The Temporal CLI (which embeds the dev server) is built from the Go module proxy with
``go install``; later releases than v1.5.1 carry a ``replace`` directive that
``go install`` refuses. The peers' Python packages (``temporalio``, ``faust-streaming``)
go into their own virtual environment rather than the project's: faust-streaming pins
``click<8.4`` (the project's CLI runs on a newer click) and its import rewrites
``os.environ``, so it is kept out of the interpreter that runs kafka-sagas.

Run alone: ``python -m bench.peers.install``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sagas.devkafka.install import cache_dir
from sagas.errors import SagaError

TEMPORAL_CLI_MODULE = "github.com/temporalio/cli/cmd/temporal"
TEMPORAL_CLI_VERSION = "v1.5.1"
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-peers.txt"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


class PeerError(SagaError):
    """A peer's tools could not be installed, or its run did not finish."""


@dataclass(frozen=True)
class PeerTools:
    """Where the installed peers' tools live."""

    temporal_binary: Path
    python: Path


def temporal_binary_path() -> Path:
    """Return where the built Temporal CLI is kept."""
    return cache_dir() / "temporal" / TEMPORAL_CLI_VERSION / "bin" / "temporal"


def peer_python_path() -> Path:
    """Return the interpreter of the peers' virtual environment."""
    return cache_dir() / "peers-venv" / "bin" / "python"


def ensure_temporal_binary() -> Path:
    """Build the Temporal CLI with ``go install`` unless it is already cached; return its path."""
    binary = temporal_binary_path()
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go")
    if go is None:
        raise PeerError("building the Temporal dev server needs the Go toolchain (go) on PATH")
    env = dict(os.environ, GOBIN=str(binary.parent))
    binary.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"building {TEMPORAL_CLI_MODULE}@{TEMPORAL_CLI_VERSION} (takes minutes on 2 cores)")
    result = subprocess.run(
        [go, "install", f"{TEMPORAL_CLI_MODULE}@{TEMPORAL_CLI_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0 or not binary.is_file():
        raise PeerError(
            f"go install of the Temporal CLI failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    print(f"built {binary} in {time.monotonic() - started:.0f} s")
    return binary


def ensure_peer_python() -> Path:
    """Create the peers' virtual environment and install their packages; return its python."""
    python = peer_python_path()
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(python.parent.parent)], check=True)
    marker = python.parent.parent / "requirements-peers.installed"
    wanted = REQUIREMENTS.read_text()
    if marker.is_file() and marker.read_text() == wanted:
        return python
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise PeerError(
            f"pip install -r {REQUIREMENTS.name} failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    marker.write_text(wanted)
    return python


def ensure_peers() -> PeerTools:
    """Install every peer's tools that are missing (idempotent) and say where they are."""
    return PeerTools(temporal_binary=ensure_temporal_binary(), python=ensure_peer_python())


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into ``KeyboardInterrupt`` for the block, so that cleanup code runs.

    Python's default SIGTERM ends the process at once, which would orphan the servers
    and workers a peer started. Outside the main thread the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_in_peer_python(module: str, args: list[str], timeout_s: float) -> str:
    """Run ``python -m module args`` in the peers' environment and return its standard output.

    The child runs in its own process group so that a timeout ends it together with
    any server it started; its standard error passes through to ours.
    """
    python = ensure_peer_python()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    child = subprocess.Popen(
        [str(python), "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        with sigterm_raises():
            out, _ = child.communicate(timeout=timeout_s)
    except BaseException:
        end_process_group(child)
        raise
    # A child that exited cleanly has stopped what it started; this only catches a leak.
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    if child.returncode != 0:
        raise PeerError(f"{module} exited with {child.returncode}; its log is above")
    return out


def end_process_group(child: subprocess.Popen[Any]) -> None:
    """Stop a child started with ``start_new_session`` together with everything it started.

    SIGTERM first so that servers shut down cleanly, then SIGKILL for whatever is left.
    """
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        child.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=5)


if __name__ == "__main__":
    tools = ensure_peers()
    print(f"temporal: {tools.temporal_binary}\npython:   {tools.python}")
