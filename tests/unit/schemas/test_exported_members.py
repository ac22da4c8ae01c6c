from __future__ import annotations

import schemas
from tests.public_surface import public_names


def test_public_surface_is_exactly_the_chosen_names() -> None:
    assert set(schemas.__all__) == {
        "AvroCodec",
        "Codec",
        "CommandCodec",
        "ConfluentWireCodec",
        "EventCodec",
        "LoadedSchema",
        "PlainAvroCodec",
        "SchemaRegistry",
        "SchemaRegistryClient",
        "SchemaRegistryError",
        "StatusCodec",
        "UnknownSchemaError",
        "load_schema",
        "topic_codec",
        "value_subject",
    }
    assert public_names(schemas) == set(schemas.__all__)
    for name in schemas.__all__:
        assert getattr(schemas, name).__module__.startswith("schemas."), name
