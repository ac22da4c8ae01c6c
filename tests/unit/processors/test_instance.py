"""Instance ids kept in a state directory, and the lock that keeps one process per directory."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from processors.instance import ID_FILE, StateDirInUseError, claim_instance, derive_instance_id


def test_the_id_names_host_and_role_and_differs_by_state_dir_role_and_queues(
    tmp_path: Path,
) -> None:
    first = derive_instance_id(tmp_path / "a", "steps", ["payments"])
    assert first == derive_instance_id(tmp_path / "a", "steps", ["payments"])
    assert first.startswith(socket.gethostname().split(".")[0][:10])
    assert "-steps-" in first
    others = {
        derive_instance_id(tmp_path / "b", "steps", ["payments"]),
        derive_instance_id(tmp_path / "a", "processor"),
        derive_instance_id(tmp_path / "a", "steps", ["payments", "stock"]),
    }
    assert first not in others
    assert len(others) == 3


def test_the_id_is_made_once_and_read_back_on_every_start(tmp_path: Path) -> None:
    claim = claim_instance(tmp_path, "order.processor", "processor")
    claim.release()
    stored = (tmp_path / "order.processor" / ID_FILE).read_text().strip()
    assert claim.instance_id == stored
    assert claim.source == str(tmp_path / "order.processor" / ID_FILE)
    # A stored id wins over a fresh derivation, so an id made by an older release stays.
    (tmp_path / "order.processor" / ID_FILE).write_text("kept-from-before\n")
    again = claim_instance(tmp_path, "order.processor", "processor")
    again.release()
    assert again.instance_id == "kept-from-before"


def test_an_explicit_id_wins_and_is_not_stored(tmp_path: Path) -> None:
    claim = claim_instance(tmp_path, "g", "steps", explicit="payments-7")
    claim.release()
    assert (claim.instance_id, claim.source) == ("payments-7", "--instance-id")
    assert not (tmp_path / "g" / ID_FILE).exists()


def test_a_state_dir_in_use_is_refused_until_released(tmp_path: Path) -> None:
    held = claim_instance(tmp_path, "g", "steps")
    with pytest.raises(StateDirInUseError, match=r"in use by another steps process \(pid \d+\)"):
        claim_instance(tmp_path, "g", "steps")
    # Other groups in the same directory (the processor beside the steps) are fine.
    claim_instance(tmp_path, "other", "processor").release()
    held.release()
    claim_instance(tmp_path, "g", "steps").release()


def test_another_process_using_the_directory_is_refused(tmp_path: Path) -> None:
    held = claim_instance(tmp_path, "g", "processor")
    try:
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys; from pathlib import Path; from processors.instance import *\n"
             "try: claim_instance(Path(sys.argv[1]), 'g', 'processor')\n"
             "except StateDirInUseError as e: print(e); sys.exit(3)",
             str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        held.release()
    assert probe.returncode == 3, probe.stderr
    assert "give each process its own --state-dir" in probe.stdout
