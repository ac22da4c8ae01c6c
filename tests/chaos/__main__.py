"""``python -m tests.chaos [--short] [--out FILE]``: one chaos run, its figures printed."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos.run import FULL, SHORT, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the small run of the test suite")
    parser.add_argument("--out", type=Path, default=None, help="where to write the figures")
    args = parser.parse_args()
    out = args.out
    if out is None and not args.short:
        out = Path("bench/results") / f"chaos-{datetime.now(UTC):%Y-%m-%d}.json"
    verdict, figures = run(SHORT if args.short else FULL, out)
    summary = {
        k: figures[k]
        for k in (
            "workflows",
            "lost",
            "stuck",
            "duplicated_decisions",
            "duplicated_effects",
            "poison",
            "ok",
        )
    }
    print(json.dumps(summary, indent=2))
    for violation in verdict.violations[:30]:
        print(violation)
    if out is not None:
        print(f"figures written to {out}")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
