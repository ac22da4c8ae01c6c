"""A call waited on for no longer than its limit, even when it never returns."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from processors.bounded_call import BoundedCaller, CallOverrunError


def test_a_call_that_returns_gives_its_value() -> None:
    caller = BoundedCaller("test")
    try:
        assert caller.call(lambda: 6 * 7, 5.0) == 42
        assert caller.call(lambda: "again", 5.0) == "again"
    finally:
        caller.close()


def test_a_call_that_raises_raises_in_the_caller() -> None:
    caller = BoundedCaller("test")

    def fail() -> None:
        raise ValueError("refused")

    try:
        with pytest.raises(ValueError, match="refused"):
            caller.call(fail, 5.0)
        assert not caller.overran
        assert caller.call(lambda: 1, 5.0) == 1
    finally:
        caller.close()


def test_a_blocked_call_is_given_up_at_its_limit_and_the_caller_refuses_more() -> None:
    caller = BoundedCaller("test")
    release = threading.Event()
    began = time.monotonic()
    with pytest.raises(CallOverrunError, match=r"0\.2 s"):
        caller.call(release.wait, 0.2)
    assert 0.2 <= time.monotonic() - began < 2.0
    assert caller.overran
    with pytest.raises(CallOverrunError, match="earlier call"):
        caller.call(lambda: 1, 5.0)
    release.set()
    caller.close()


def test_a_call_that_never_returns_does_not_keep_the_process_alive() -> None:
    script = (
        "import threading\n"
        "from processors.bounded_call import BoundedCaller, CallOverrunError\n"
        "caller = BoundedCaller('stuck')\n"
        "try:\n"
        "    caller.call(threading.Event().wait, 0.1)\n"
        "except CallOverrunError:\n"
        "    print('gave up')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == "gave up"
