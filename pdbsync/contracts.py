"""The JSON Schemas in ``schemas/`` and validation against them.

Events, the summary and the config are contracts with other programs (jq filters, log
pipelines, CI jobs). Everything pdb-sync writes in machine form is checked against the
schema that documents it, so a consumer can trust the schema rather than our memory.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema costs ~100 ms to import: pool workers never need it
    from jsonschema import Draft202012Validator
    from referencing import Registry

#: Version of the event and summary envelope (``v``). Bump on a breaking change.
SCHEMA_VERSION = 1


def _schema_text(name: str) -> str:
    # A source checkout's schemas/ wins (it is what the code beside it was written for);
    # an installed wheel carries them as the package data of pdbsync.schemas.
    in_checkout = Path(__file__).resolve().parent.parent / "schemas" / name
    if in_checkout.is_file():
        return in_checkout.read_text(encoding="utf-8")
    return resources.files("pdbsync.schemas").joinpath(name).read_text(encoding="utf-8")


SCHEMA_NAMES = ("config", "event", "summary", "plan")


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The parsed ``schemas/<name>.schema.json``."""
    return json.loads(_schema_text(f"{name}.schema.json"))


@functools.cache
def _registry() -> Registry:
    """All our schemas by ``$id``, so one may ``$ref`` another (events embed the summary)."""
    from referencing import Registry, Resource

    resources = [(schema(n)["$id"], Resource.from_contents(schema(n))) for n in SCHEMA_NAMES]
    return Registry().with_resources(resources)


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """The validator for ``schemas/<name>.schema.json``, built once per process."""
    from jsonschema import Draft202012Validator

    # The schemas themselves are checked against the metaschema by the test suite
    # (tests/test_contracts.py), not on every run: that check costs more than the import.
    return Draft202012Validator(schema(name), registry=_registry())


def problems(instance: Any, name: str) -> list[str]:
    """Every way ``instance`` breaks schema ``name``, as ``key.path: message`` lines."""
    found = []
    for error in sorted(validator(name).iter_errors(instance), key=lambda e: list(e.path)):
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        found.append(f"{where}: {error.message}")
    return found
