"""JSON in its compact form, without spaces: how states, index keys, cursors and records
carry their JSON."""

from __future__ import annotations

import json

# Built once: json.dumps with any option other than the defaults builds a new encoder on
# every call, which cost a replay four encoders per workflow.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: object) -> str:
    """``value`` as ``json.dumps(value, separators=(",", ":"))`` writes it."""
    return _ENCODER.encode(value)
