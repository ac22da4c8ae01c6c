"""Start and stop the kafka-sagas worker processes a benchmark runs against."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_worker(
    saga_ref: str,
    role: str,
    bootstrap: str,
    prefix: str,
    state_dir: Path,
    log_path: Path,
    *,
    metrics_port: int | None = None,
    extra: list[str] | None = None,
    instance: str | None = None,
) -> subprocess.Popen[bytes]:
    """Run ``sagas worker`` for one role in its own process (its own core when one is free)."""
    command = [sys.executable, "-m", "sagas.cli", "worker", saga_ref, "--role", role,
               "--state-dir", str(state_dir),
               "--instance-id", instance or f"bench-{role}"]  # fmt: skip
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    command += extra or []
    env = {**os.environ, "SAGAS_BOOTSTRAP_SERVERS": bootstrap, "SAGAS_TOPIC_PREFIX": prefix}
    log = log_path.open("ab")
    try:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
