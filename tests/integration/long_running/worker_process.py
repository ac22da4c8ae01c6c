"""A ``sagas worker`` run as a separate process, so a test can SIGKILL and restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sagas.config import KafkaSettings

_REPO = Path(__file__).resolve().parents[3]


class WorkerProcess:
    """One ``sagas worker MODULE:SAGA`` process with a state dir, and an instance id when given
    (else the worker keeps its own in the state dir)."""

    def __init__(
        self,
        saga_ref: str,
        kafka: KafkaSettings,
        *,
        role: str,
        state_dir: Path,
        log_path: Path,
        instance_id: str | None = None,
    ) -> None:
        self.saga_ref = saga_ref
        self.kafka = kafka
        self.role = role
        self.state_dir = state_dir
        self.instance_id = instance_id
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line of the worker."""
        instance = ["--instance-id", self.instance_id] if self.instance_id is not None else []
        return [
            sys.executable, "-m", "sagas.cli", "worker", self.saga_ref,
            "--role", self.role,
            "--state-dir", str(self.state_dir),
            *instance,
            "--bootstrap-servers", self.kafka.bootstrap_servers,
            "--topic-prefix", self.kafka.topic_prefix,
            "--no-create-topics",
        ]  # fmt: skip

    def start(self) -> None:
        """Start the process (its output goes to ``log_path``)."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=_REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )

    def kill(self) -> None:
        """SIGKILL the process, as a crash would, and reap it."""
        process = self._require()
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the process and wait for it; SIGKILL it if it lingers. Returns its code."""
        process = self._require()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
        return process.returncode

    @property
    def pid(self) -> int:
        """The process id (for SIGSTOP and SIGCONT)."""
        return self._require().pid

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def _require(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise AssertionError("the worker process was never started")
        return self._process
