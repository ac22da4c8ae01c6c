"""Long-running features (issue 5) against a real broker: timers, signals, branches,
parallel groups, versions, signal errors and the history command."""
