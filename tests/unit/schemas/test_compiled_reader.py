"""The event reader reads as its source does, whether it runs compiled or interpreted.

scripts/compile_native.py may have put a compiled module in the source's place; this
loads the source itself beside it and gives both the same bodies, whole and cut.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from hypothesis import given
from hypothesis import strategies as st

import schemas.avro_reader
from sagas.errors import SerializationError
from sagas.events import Event
from schemas import EventCodec
from tests.unit.schemas.strategies import events

CODEC = EventCodec()


def _interpreted() -> ModuleType:
    source = Path(schemas.__file__).parent / "avro_reader.py"
    spec = importlib.util.spec_from_file_location("avro_reader_source", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOURCE = _interpreted()


def _outcome(read: Callable[[bytes], Event], data: bytes) -> object:
    try:
        return read(data)
    except SerializationError as exc:
        return ("error", str(exc))


@given(events, st.integers(min_value=0, max_value=400))
def test_the_loaded_reader_and_its_source_agree(event: Event, cut: int) -> None:
    data = CODEC.encode(event)
    for body in (data, data[:cut], data + b"\x02\x04ab"):
        assert _outcome(schemas.avro_reader.read_event, body) == _outcome(SOURCE.read_event, body)
