"""Resolve the jars of Apache Kafka from Maven Central into a local cache, once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from sagas.errors import ConfigurationError

# The newest 4.x release whose artifacts are all on Maven Central (4.4.0 lacks
# kafka-tools-api there). Override with SAGAS_KAFKA_VERSION.
DEFAULT_KAFKA_VERSION = "4.3.1"

_COMPLETE_MARKER = ".complete"

INSTALL_HINT = (
    "On Debian or Ubuntu: `sudo apt-get update && sudo apt-get install -y "
    "openjdk-17-jre-headless maven`; on macOS: `brew install openjdk@17 maven`. "
    "Or point kafka-sagas at an existing cluster with SAGAS_BOOTSTRAP_SERVERS=host:port."
)


def cache_dir() -> Path:
    """Where resolved jars and local broker data live (``SAGAS_HOME`` overrides)."""
    home = os.environ.get("SAGAS_HOME")
    if home:
        return Path(home)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kafka-sagas"


def kafka_version() -> str:
    """The Kafka version to run: ``SAGAS_KAFKA_VERSION`` or the default."""
    return os.environ.get("SAGAS_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)


def require_tool(name: str) -> str:
    """Return the path of a command on PATH, or say exactly how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ConfigurationError(
            f"`{name}` was not found on PATH; the local Kafka broker needs Java 17+ and Maven. "
            + INSTALL_HINT
        )
    return path


def java_command() -> str:
    """The java executable: ``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.exists():
            return str(candidate)
    return require_tool("java")


def resolve_jars(version: str | None = None, *, quiet: bool = True) -> Path:
    """Return a directory holding every jar a Kafka broker needs, resolving it if missing.

    Maven copies the runtime dependencies of ``kafka_2.13`` plus a log4j2 SLF4J binding.
    The directory is only marked complete after Maven succeeded, so an interrupted
    download is redone rather than half used.
    """
    version = version or kafka_version()
    libs = cache_dir() / f"kafka-{version}" / "libs"
    if (libs / _COMPLETE_MARKER).exists():
        return libs
    mvn = require_tool("mvn")
    require_tool("java")
    template = resources.files("sagas.devkafka").joinpath("pom.xml").read_text()
    libs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sagas-kafka-pom-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(template.replace("KAFKA_VERSION", version))
        command = [
            mvn,
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]
        if quiet:
            command.insert(1, "-q")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ConfigurationError(
            f"Maven could not resolve Apache Kafka {version} (exit {result.returncode}):\n{tail}"
        )
    (libs / _COMPLETE_MARKER).write_text(version)
    return libs


def classpath(libs: Path) -> str:
    """The java classpath of every jar in ``libs``."""
    return os.pathsep.join(str(jar) for jar in sorted(libs.glob("*.jar")))
