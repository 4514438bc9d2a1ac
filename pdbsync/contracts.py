"""The JSON Schemas in ``schemas/`` and validation against them.

Events, the summary and the config are contracts with other programs (jq filters, log
pipelines, CI jobs). Everything pdb-sync writes in machine form is checked against the
schema that documents it, so a consumer can trust the schema rather than our memory.
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is slow to import: pool workers never need it
    from jsonschema import Draft202012Validator
    from referencing import Registry

#: Version of the event and summary envelope (``v``). Bump on a breaking change.
SCHEMA_VERSION = 1


def _schema_text(name: str) -> str:
    # A source checkout's schemas/ wins (it is what the code beside it was written for);
    # an installed wheel carries them as the package data of pdbsync.schemas, read as a
    # plain file when it is one (importing importlib.resources would add to every start).
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas" / name, here / "schemas" / name):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    from importlib import resources  # a zipped install

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


def warm_in_background(name: str) -> None:
    """Import jsonschema and build ``name``'s validator in a daemon thread.

    A run validates its summary at the end; the slow import then overlaps with the
    transfers instead of following them. Call it only once the worker pool has forked:
    a fork while another thread imports could leave a child holding an import lock.
    """
    threading.Thread(target=validator, args=(name,), name="warm-validator", daemon=True).start()


#: How many fingerprints of instances found valid are remembered (see known_valid).
_REMEMBERED = 64


def _fingerprint(name: str, instance: Any) -> str | None:
    """A digest of ``instance``, schema ``name``'s text and pdb-sync's version."""
    import orjson

    from pdbsync import __version__
    from pdbsync.digest import blake2b

    try:
        body = orjson.dumps(instance, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return None
    digest = blake2b(body, digest_size=32)
    digest.update(_schema_text(f"{name}.schema.json").encode())
    digest.update(__version__.encode())
    return digest.hexdigest()


def _remembered_path() -> Path:
    from pdbsync.store.history import state_dir

    return state_dir() / "valid-configs"


def known_valid(name: str, instance: Any) -> bool:
    """Whether this very instance (same content, same schema, same pdb-sync) was found
    valid before: then a run of an unchanged config need not import jsonschema."""
    from pdbsync.store.history import read_cache

    fingerprint = _fingerprint(name, instance)
    if fingerprint is None:
        return False
    return fingerprint in (read_cache(_remembered_path()) or "").split()


def remember_valid(name: str, instance: Any) -> None:
    """Note that ``instance`` is valid against schema ``name`` (best effort: a state
    directory that cannot be written only costs the next run the check)."""
    from pdbsync.store.history import read_cache, write_cache

    fingerprint = _fingerprint(name, instance)
    if fingerprint is None:
        return
    path = _remembered_path()
    cached = read_cache(path)
    if cached is None:
        return  # not a regular file
    kept = [*(line for line in cached.split() if line != fingerprint), fingerprint][-_REMEMBERED:]
    write_cache(path, "\n".join(kept) + "\n")


def problems(instance: Any, name: str) -> list[str]:
    """Every way ``instance`` breaks schema ``name``, as ``key.path: message`` lines."""
    found = []
    for error in sorted(validator(name).iter_errors(instance), key=lambda e: list(e.path)):
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        found.append(f"{where}: {error.message}")
    return found
