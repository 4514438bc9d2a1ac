"""The schemas themselves are valid JSON Schema (checked here, not on every run)."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from pdbsync import contracts


@pytest.mark.parametrize("name", contracts.SCHEMA_NAMES)
def test_each_schema_is_valid_json_schema(name):
    Draft202012Validator.check_schema(contracts.schema(name))
