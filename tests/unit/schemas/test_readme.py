from __future__ import annotations

import json
import re
from importlib import resources
from io import StringIO

from fastavro import json_reader

from sagas.events import EventType, Origin
from schemas.codecs import EventCodec
from schemas.loading import load_schema


def test_the_answer_shown_to_participants_is_a_valid_event() -> None:
    readme = resources.files("schemas").joinpath("README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```json\n(.*?)```", readme, flags=re.DOTALL)
    line = json.dumps(json.loads(example))
    [fields] = list(json_reader(StringIO(line), load_schema("event").parsed))
    codec = EventCodec()
    event = codec.from_dict(fields)
    assert event.type is EventType.STEP_SUCCEEDED
    assert event.origin is Origin.WORKER
    assert event.step == "charge_card"
    assert event.cause is not None
    assert codec.decode(codec.encode(event)) == event
