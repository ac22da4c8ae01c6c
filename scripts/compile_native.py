"""Compile the replay's per-event modules to C extension modules with mypyc, in place.

    .venv/bin/python scripts/compile_native.py          # compile what changed since the last build
    .venv/bin/python scripts/compile_native.py --check  # exit 1 if a compiled module is stale
    .venv/bin/python scripts/compile_native.py --clean  # remove them: pure Python again

A replay spends its CPU per event reading Avro, folding and indexing, in a few modules
whose code is plain typed Python; compiled, they fold about 1.5 times as fast in memory,
and a whole rebuild (changelog and store written, the broker beside it) takes about a
fifth less time (bench/results/rebuild-2026-12-02-2cpu-24g-amd-epyc-2.json). Python
imports ``x.cpython-311-….so`` before ``x.py``, so the compiled module takes the place of
its source, and removing it brings the source back. Nothing else changes: the sources
stay the project's code, and an install without a C compiler runs them as they are.

Only modules whose inputs are the project's own values are listed. A compiled function
refuses an argument of the wrong type with a bare ``TypeError`` before its first line
runs, so modules that check values a team passes in (store keys, staged writes) and
answer with their own error stay interpreted.

A compiled module left behind by an edited source would run the old code: the build
records the sources it compiled in ``build/native-sources.json``, and the test suite
refuses to start while one differs (``--check``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = (
    "schemas/avro_reader.py",
    "sagas/engine/fold.py",
    "sagas/engine/timers.py",
    "sagas/log_order.py",
    "processors/log_fold.py",
    "processors/search_index.py",
    "processors/store/changelog.py",
)
# mypyc puts what the modules share in one library named after the group; in a package,
# so that every import of a compiled module finds it the way it finds the module.
GROUP = "sagas._compiled"
MANIFEST = ROOT / "build" / "native-sources.json"


def _digest(source: str) -> str:
    return hashlib.sha256((ROOT / source).read_bytes()).hexdigest()


def _built(source: str) -> list[Path]:
    stem = ROOT / source
    return sorted(stem.parent.glob(f"{stem.stem}.*{sysconfig.get_config_var('SHLIB_SUFFIX')}"))


def _group_library() -> list[Path]:
    package, name = GROUP.rsplit(".", 1)
    return sorted((ROOT / package).glob(f"{name}__mypyc.*"))


def stale() -> list[str]:
    """The listed modules whose compiled form is missing or was built from another source
    (empty when none is compiled: pure Python is never stale)."""
    compiled = [source for source in MODULES if _built(source)]
    if not compiled:
        return []
    recorded = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    return [source for source in MODULES if recorded.get(source) != _digest(source)]


def clean() -> None:
    for source in MODULES:
        for path in _built(source):
            path.unlink()
    for path in _group_library():
        path.unlink()
    MANIFEST.unlink(missing_ok=True)


def build() -> None:
    # Imported here: --check and --clean need neither mypyc nor a compiler.
    from mypyc.build import mypycify
    from setuptools import Distribution

    clean()
    with tempfile.TemporaryDirectory(prefix="sagas-native-") as work:
        distribution = Distribution(
            {
                "name": "kafka-sagas-native",
                "ext_modules": mypycify(
                    list(MODULES), group_name=GROUP, target_dir=str(Path(work) / "c")
                ),
            }
        )
        command = distribution.get_command_obj("build_ext")
        command.inplace = True
        command.build_temp = str(Path(work) / "temp")
        command.build_lib = str(Path(work) / "lib")
        distribution.run_command("build_ext")
    MANIFEST.parent.mkdir(exist_ok=True)
    MANIFEST.write_text(json.dumps({source: _digest(source) for source in MODULES}, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if a compiled module is stale")
    group.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument(
        "--force", action="store_true", help="compile even when every module is up to date"
    )
    args = parser.parse_args()
    if args.clean:
        clean()
        return 0
    outdated = stale()
    if args.check:
        for source in outdated:
            print(f"{source}: its compiled module was built from another source", file=sys.stderr)
        return 1 if outdated else 0
    if not args.force and _built(MODULES[0]) and not outdated:
        return 0
    build()
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)  # mypycify names the modules by their paths from the project's root
    sys.exit(main())
