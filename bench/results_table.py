"""Print a results file's headline rows as the Markdown table the README shows.

python -m bench.results_table bench/results/<date>-<machine>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.run import report_rows


def markdown(figures: dict[str, object]) -> str:
    """The README's table of one run: measure, this run's figure, goal."""
    lines = ["| measure | this run | goal |", "|---|---|---|"]
    for name, value, goal in report_rows(figures):
        lines.append(f"| {name.strip()} | {value} | {goal} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.results_table RESULTS.json", file=sys.stderr)
        return 2
    print(markdown(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
