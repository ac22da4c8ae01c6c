"""The demo as a newcomer runs it, on a broker of its own that stops at the end.

Before, it began with librdkafka's "Coordinator load in progress" warnings and ended
with a dozen raw ``%3|...|FAIL|... Connection refused`` lines: its producers outlived
the broker, flushed but never closed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(400)
def test_the_demo_prints_its_story_and_no_raw_librdkafka_line_or_traceback() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SAGAS_")}
    ran = subprocess.run(
        [sys.executable, "-m", "examples.demo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=380, check=False,
    )  # fmt: skip
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output
    lines = output.splitlines()
    assert [line for line in lines if line.startswith("%")] == []
    assert "Traceback" not in output
    assert [line for line in lines if "WARNING" in line or "ERROR" in line] == []
    assert "COMPENSATED" in output
    assert ran.stderr == ""
