"""Resolve Apicurio Registry from Maven Central once; run it on 127.0.0.1 with in-memory storage.

Apicurio Registry serves the Confluent Schema Registry API at ``/apis/ccompat/v7``,
which is all kafka-sagas and Confluent's serializers speak. It needs Java 21+, which
may not be the ``java`` on PATH (the broker runs on 17), so one is looked for.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from sagas.devkafka.cluster import _die_with_parent, free_port
from sagas.devkafka.install import cache_dir, require_tool
from sagas.errors import ConfigurationError, SagaError

DEFAULT_APICURIO_VERSION = "3.3.3"
"""The newest Apicurio Registry on Maven Central; ``SAGAS_APICURIO_VERSION`` picks another."""

CCOMPAT_PATH = "/apis/ccompat/v7"
"""Where Apicurio serves the Confluent-compatible API: the schema registry URL ends here."""

MIN_JAVA = 21
_STOP_GRACE_S = 20.0
_COMPLETE_MARKER = ".complete"

JAVA_HINT = (
    f"Apicurio Registry needs Java {MIN_JAVA}+ and none was found in JAVA_HOME, /usr/lib/jvm "
    "or on PATH; install one (Debian/Ubuntu: `sudo apt-get install -y openjdk-21-jre-headless`, "
    "or Eclipse Temurin 21+; macOS: `brew install openjdk@21`) or set JAVA_HOME to it"
)


class SchemaRegistryStartError(SagaError):
    """The local schema registry could not be resolved or did not start."""


def apicurio_version() -> str:
    """The Apicurio Registry version to run: ``SAGAS_APICURIO_VERSION`` or the default."""
    return os.environ.get("SAGAS_APICURIO_VERSION", DEFAULT_APICURIO_VERSION)


def java_major(java: Path) -> int | None:
    """The major version of a ``java`` executable, read from its JDK's ``release`` file or run."""
    release = java.resolve().parent.parent / "release"
    text = ""
    if release.exists():
        text = release.read_text(errors="replace")
    else:
        try:
            run = subprocess.run(
                [str(java), "-version"], capture_output=True, text=True, timeout=20, check=False
            )
            text = run.stderr + run.stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
    match = re.search(r'version\s*=?\s*"(\d+)', text, re.IGNORECASE) or re.search(
        r'JAVA_VERSION="(\d+)', text
    )
    return int(match.group(1)) if match else None


def find_java(minimum: int = MIN_JAVA, jvm_root: Path = Path("/usr/lib/jvm")) -> Path:
    """A ``java`` at least ``minimum``: JAVA_HOME's, the newest in ``jvm_root``, PATH's."""
    candidates: list[Path] = []
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidates.append(Path(java_home) / "bin" / "java")
    if jvm_root.is_dir():
        found = [(java_major(j) or 0, j) for j in jvm_root.glob("*/bin/java") if j.exists()]
        candidates.extend(j for _, j in sorted(found, key=lambda pair: pair[0], reverse=True))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for java in candidates:
        if java.exists() and (java_major(java) or 0) >= minimum:
            return java
    raise ConfigurationError(JAVA_HINT)


def resolve_registry(
    version: str | None = None, *, progress: Callable[[str], None] | None = None
) -> Path:
    """The directory of an unpacked Apicurio Registry distribution, resolving it once.

    Maven copies ``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` (~160 MB) from
    Maven Central; it is unpacked into the cache and marked complete only then, so an
    interrupted download is redone rather than half used.
    """
    version = version or apicurio_version()
    home = cache_dir() / f"apicurio-registry-{version}"
    if (home / _COMPLETE_MARKER).exists():
        return home
    mvn = require_tool("mvn")
    say = progress or (lambda line: None)
    say(f"Resolving Apicurio Registry {version} (~160 MB, once) into {home} ...")
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sagas-apicurio-", dir=home) as work:
        command = [
            mvn, "-B", "-q", "dependency:copy",
            f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:tar.gz:all",
            f"-DoutputDirectory={work}",
        ]  # fmt: skip
        done = threading.Event()
        watcher = threading.Thread(target=_report_download, args=(version, say, done), daemon=True)
        watcher.start()
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        finally:
            done.set()
            watcher.join()
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise SchemaRegistryStartError(
                f"Maven could not resolve Apicurio Registry {version} "
                f"(exit {result.returncode}):\n{tail}"
            )
        archives = list(Path(work).glob("*.tar.gz"))
        if not archives:
            raise SchemaRegistryStartError(f"Maven resolved no archive of Apicurio {version}")
        say("Unpacking Apicurio Registry ...")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(home / "dist", filter="data")
    if _runner_jar(home) is None:
        raise SchemaRegistryStartError(f"no quarkus-run.jar in the Apicurio archive at {home}")
    (home / _COMPLETE_MARKER).write_text(version)
    return home


def _report_download(version: str, say: Callable[[str], None], done: threading.Event) -> None:
    """Say every few seconds how far Maven's download into the local repository has come."""
    folder = Path.home() / ".m2" / "repository" / "io" / "apicurio" / "apicurio-registry-app"
    folder = folder / version
    last = -1
    while not done.wait(5.0):
        parts = list(folder.glob("*.tar.gz.part")) if folder.is_dir() else []
        size = sum(p.stat().st_size for p in parts if p.exists()) // 1_000_000
        if parts and size != last:
            say(f"  downloaded {size} MB of ~160 MB")
            last = size


def _runner_jar(home: Path) -> Path | None:
    # The archive holds a Quarkus fast-jar: quarkus-run.jar beside lib/, app/ and quarkus/.
    jars = sorted((home / "dist").glob("**/quarkus-run.jar"))
    return jars[0] if jars else None


@dataclass
class LocalSchemaRegistry:
    """Apicurio Registry on 127.0.0.1 (in-memory storage), serving the Confluent API.

    Use as a context manager, or call :meth:`start` and :meth:`stop`; ``url`` is the
    value for ``SAGAS_SCHEMA_REGISTRY_URL``.
    """

    port: int | None = None
    heap: str = "384m"
    progress: Callable[[str], None] | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_dir: Path | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The Confluent-compatible base URL of the running registry."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    @property
    def log_path(self) -> Path:
        """Where the registry's output goes."""
        assert self._log_dir is not None, "the registry was never started"
        return self._log_dir / "apicurio.log"

    def start(self, timeout_s: float = 120.0) -> LocalSchemaRegistry:
        """Find Java 21+, resolve the registry if needed, start it, wait until it answers."""
        java = find_java()
        home = resolve_registry(progress=self.progress)
        jar = _runner_jar(home)
        assert jar is not None
        if self.port is None:
            self.port = free_port()
        self._log_dir = Path(tempfile.mkdtemp(prefix="sagas-apicurio-"))
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(java), f"-Xmx{self.heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             f"-Dquarkus.http.port={self.port}", "-Dquarkus.http.host=127.0.0.1",
             "-Dquarkus.log.level=WARN", "-Dapicurio.storage.kind=sql",
             "-Dapicurio.storage.sql.kind=h2", "-Dquarkus.analytics.disabled=true",
             # Its management interface binds port 9000 on every interface by default (and
             # is on at build time): a second registry on the machine could not start.
             f"-Dquarkus.management.port={free_port()}", "-Dquarkus.management.host=127.0.0.1",
             "-jar", str(jar)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self._log_dir,
            # As for the broker: Ctrl-C reaches the registry only through stop().
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.close()
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until the Confluent-compatible API answers a list of subjects."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                tail = _tail(self.log_path)
                code = self._process.returncode
                self.stop()
                raise SchemaRegistryStartError(f"Apicurio Registry exited with {code}:\n{tail}")
            try:
                with urllib.request.urlopen(self.url + "/subjects", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        tail = _tail(self.log_path)
        self.stop()
        raise SchemaRegistryStartError(
            f"Apicurio Registry on port {self.port} did not answer within {timeout_s:.0f}s:\n{tail}"
        )

    def stop(self) -> None:
        """SIGTERM the registry, SIGKILL it if it is still running after a grace period."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __enter__(self) -> LocalSchemaRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
