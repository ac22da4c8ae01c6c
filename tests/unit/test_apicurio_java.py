"""Finding a Java 21+ for the local schema registry, and saying what to install when none is."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagas.devkafka.apicurio import find_java
from sagas.errors import ConfigurationError


def _jdk(root: Path, name: str, version: str) -> Path:
    java = root / name / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    (root / name / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return java


def test_the_newest_jdk_of_21_or_later_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    _jdk(tmp_path, "java-17", "17.0.15")
    newest = _jdk(tmp_path, "temurin-25", "25.0.1")
    _jdk(tmp_path, "temurin-21", "21.0.4")
    assert find_java(jvm_root=tmp_path) == newest


def test_without_java_21_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")
    _jdk(tmp_path, "java-17", "17.0.15")
    with pytest.raises(ConfigurationError) as caught:
        find_java(jvm_root=tmp_path)
    message = str(caught.value)
    assert "Java 21+" in message
    assert "openjdk-21-jre-headless" in message
    assert "\n" not in message
