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
import time
from dataclasses import dataclass
from pathlib import Path

from sagas.devkafka.install import cache_dir
from sagas.errors import ConfigurationError

TEMPORAL_CLI_MODULE = "github.com/temporalio/cli/cmd/temporal"
TEMPORAL_CLI_VERSION = "v1.5.1"
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements-peers.txt"
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


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
        raise ConfigurationError(
            "building the Temporal dev server needs Go (1.23 or later) on PATH"
        )
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
        raise ConfigurationError(
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
        raise ConfigurationError(
            f"pip install -r {REQUIREMENTS.name} failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    marker.write_text(wanted)
    return python


def ensure_peers() -> PeerTools:
    """Install every peer's tools that are missing (idempotent) and say where they are."""
    return PeerTools(temporal_binary=ensure_temporal_binary(), python=ensure_peer_python())


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
        out, _ = child.communicate(timeout=timeout_s)
    except BaseException:
        _end_group(child)
        raise
    if child.returncode != 0:
        raise ConfigurationError(f"{module} exited with {child.returncode}; its log is above")
    return out


def _end_group(child: subprocess.Popen[str]) -> None:
    """Stop a child's whole process group: politely, then for good."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    tools = ensure_peers()
    print(f"temporal: {tools.temporal_binary}\npython:   {tools.python}")
