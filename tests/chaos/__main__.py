"""``python -m tests.chaos [--short] [--nemeses KIND,...] [--out FILE]``: one chaos run, its
figures printed."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos.run import FULL, NEMESES, SHORT, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the small run of the test suite")
    parser.add_argument("--out", type=Path, default=None, help="where to write the figures")
    parser.add_argument(
        "--nemeses",
        type=lambda text: tuple(text.split(",")),
        default=None,
        metavar="KIND,KIND",
        help=f"only these nemeses, in this order, at the run's size (kinds: {', '.join(NEMESES)})",
    )
    args = parser.parse_args()
    config = SHORT if args.short else FULL
    if args.nemeses is not None:
        unknown = [kind for kind in args.nemeses if kind not in NEMESES]
        if unknown:
            parser.error(f"unknown nemesis {', '.join(unknown)} (kinds: {', '.join(NEMESES)})")
        config = dataclasses.replace(config, nemeses=args.nemeses)
    out = args.out
    if out is None and not args.short:
        out = Path("bench/results") / f"chaos-{datetime.now(UTC):%Y-%m-%d}.json"
    verdict, figures = run(config, out)
    summary = {
        k: figures[k]
        for k in (
            "workflows",
            "children",
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
