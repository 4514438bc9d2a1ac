"""The schemas themselves are valid JSON Schema (checked here, not on every run)."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from pdbsync import contracts


@pytest.mark.parametrize("name", contracts.SCHEMA_NAMES)
def test_each_schema_is_valid_json_schema(name):
    Draft202012Validator.check_schema(contracts.schema(name))


def test_the_event_types_are_listed_in_one_place():
    """pdbsync.events.EVENT_TYPES and the event schema's enum name the same types."""
    from pdbsync.events import EVENT_TYPES

    schema_types = contracts.schema("event")["properties"]["type"]["enum"]
    assert sorted(EVENT_TYPES) == sorted(schema_types)
