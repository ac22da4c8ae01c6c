"""The dashboard stays in the top layer: no runtime internals, and the client in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import sagas.dashboard

PACKAGE = Path(sagas.dashboard.__file__).parent
CLIENT_SIDE = {"sagas.client", "sagas.client.history", "sagas.client.dead_letters",
               "sagas.client.status_view", "topics.lag"}  # fmt: skip


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_imports_the_runtime_and_one_imports_the_client() -> None:
    by_module = {path.name: imports_of(path) for path in PACKAGE.glob("*.py")}
    assert "app.py" in by_module
    for name, imported in by_module.items():
        assert not any(m == "processors" or m.startswith("processors.") for m in imported), name
        if name != "kafka_sources.py":
            assert not imported & CLIENT_SIDE, name
    assert CLIENT_SIDE - {"sagas.client.status_view"} <= by_module["kafka_sources.py"]


def test_the_public_surface() -> None:
    assert set(sagas.dashboard.__all__) == {"DashboardSettings", "DashboardSources", "create_app"}
    for name in sagas.dashboard.__all__:
        assert getattr(sagas.dashboard, name).__doc__, name
