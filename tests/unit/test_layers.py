"""Imports point down the layers of DESIGN.md: no module imports one of a higher layer.

Every module of the five packages is parsed (module-level, function-level and
``if TYPE_CHECKING:`` imports alike) and placed in its layer by one table.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sagas", "schemas", "topics", "compensations", "processors")
LAYER_NAMES = (
    "records",
    "wire",
    "Kafka plumbing",
    "authoring",
    "engine",
    "client",
    "runtime",
    "top",
)
ENGINE = LAYER_NAMES.index("engine")

# A prefix names a module and everything below it. `sagas` itself is only its
# `__init__` (the front door): any other module of `sagas` must be listed, so a new
# module is placed in a layer on purpose.
LAYERS: dict[str, int] = {
    "sagas.errors": 0,
    "sagas.config": 0,
    "sagas.events": 0,
    "sagas.kafka_logs": 0,
    "sagas.log_order": 0,
    "sagas.workflow_search": 0,
    "sagas.compact_json": 0,
    "schemas": 1,
    "topics": 2,
    "sagas": 3,
    "sagas.definition": 3,
    "sagas.context": 3,
    "sagas.retry": 3,
    "sagas.payloads": 3,
    "sagas.visibility": 3,
    "sagas.engine": 4,
    "compensations": 4,
    "sagas.client": 5,
    "processors": 6,
    "sagas.cli": 7,
    "sagas.testing": 7,
    "sagas.devkafka": 7,
    "sagas.dashboard": 7,
}
EXACT_ONLY = {"sagas"}


def layer_of(module: str, layers: dict[str, int] = LAYERS) -> int | None:
    """The layer of ``module`` by its longest listed prefix, or ``None`` if it has none."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in layers and (end == len(parts) or prefix not in EXACT_ONLY):
            return layers[prefix]
    return None


@dataclass(frozen=True)
class Import:
    """One import statement's target, as seen in the importing module."""

    module: str
    path: Path
    line: int
    target: str


def modules_of(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """The imports of one module, wherever they stand in it; ``known`` tells a submodule
    imported by ``from package import name`` from a name the package defines."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield Import(module, path, node.lineno, submodule if submodule in known else source)


def upward_imports(
    root: Path,
    packages: tuple[str, ...],
    layer: Callable[[str], int | None] = layer_of,
) -> tuple[list[str], list[Import]]:
    """Modules with no layer, and every import of a higher layer than its importer's."""
    modules = modules_of(root, packages)
    unplaced = sorted(name for name in modules if layer(name) is None)
    upward: list[Import] = []
    for name, path in modules.items():
        own = layer(name)
        for imp in imports_of(name, path, set(modules)):
            if imp.target.split(".")[0] not in packages:
                continue
            theirs = layer(imp.target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(imp)
    return unplaced, upward


def describe(imp: Import, layer: Callable[[str], int | None] = layer_of) -> str:
    """One line naming the importing module, its line and the target, with their layers."""
    own, theirs = layer(imp.module), layer(imp.target)
    assert own is not None
    assert theirs is not None
    return (
        f"{imp.path}:{imp.line}: {imp.module} ({LAYER_NAMES[own]}) imports "
        f"{imp.target} ({LAYER_NAMES[theirs]})"
    )


def test_every_module_has_a_layer_and_imports_only_downwards() -> None:
    unplaced, upward = upward_imports(ROOT, PACKAGES)
    assert not unplaced, f"modules with no layer in LAYERS: {unplaced}"
    assert not upward, "imports of a higher layer:\n" + "\n".join(map(describe, upward))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def test_the_check_names_an_upward_import_wherever_it_stands(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "sagas/__init__.py": "from sagas.errors import SagaError\n",
            "sagas/errors.py": """\
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from topics.naming import TopicNames


                def runtime() -> None:
                    from processors import runner
                """,
            "sagas/client/__init__.py": "from . import reader\n",
            "sagas/client/reader.py": "from ..errors import SagaError\nimport topics.naming\n",
            "topics/__init__.py": "",
            "topics/naming.py": "from sagas.client import reader\n",
            "processors/__init__.py": "",
            "processors/runner.py": "import sagas.client.reader\nfrom sagas import errors\n",
        },
    )
    unplaced, upward = upward_imports(tmp_path, ("sagas", "topics", "processors"))
    assert unplaced == []
    found = {(imp.module, imp.line, imp.target) for imp in upward}
    assert found == {
        ("sagas.errors", 4, "topics.naming"),
        ("sagas.errors", 8, "processors.runner"),
        ("topics.naming", 1, "sagas.client.reader"),
    }
    message = describe(next(imp for imp in upward if imp.target == "processors.runner"))
    assert message.endswith(":8: sagas.errors (records) imports processors.runner (runtime)")


def test_a_module_missing_from_the_table_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, {"sagas/__init__.py": "", "sagas/newcomer.py": "", "sagas/retry.py": ""})
    unplaced, _ = upward_imports(tmp_path, ("sagas",))
    assert unplaced == ["sagas.newcomer"]


@pytest.mark.parametrize("package", ["topics", "schemas", "sagas"])
def test_importing_a_lower_package_loads_nothing_of_the_engine_or_above(package: str) -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {package}; print(*sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    ours = [name for name in loaded if name.split(".")[0] in PACKAGES]
    above = [name for name in ours if (layer_of(name) or 0) >= ENGINE]
    assert not above, f"`import {package}` loaded {above}; all it loaded of ours: {ours}"
