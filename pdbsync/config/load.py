"""Finding, reading and validating the TOML config.

The config is checked completely before any rsync starts: structure against
``schemas/config.schema.json`` (so every message names the key path), then the
rules a schema cannot say well (safe names, rsync URL forms, destinations that stay
inside pdb_dir, below it, and apart from each other). A config that passes here produces
only well-formed jobs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from pdbsync import contracts, paths
from pdbsync.config import compat, options
from pdbsync.errors import ConfigError, UsageError
from pdbsync.mirrors import registry as mirrors
from pdbsync.rsync import url as rsync_url
from pdbsync.store.views import parse_duration
from pdbsync.weekly import layouts

#: Target names end up in log prefixes, file names and Slurm job names.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Characters that mean something to a shell or to rsync's argument parsing.
UNSAFE_URL_CHARS = set(" \t\n\r;|&$`<>()'\"\\*?{}[]!#~^")
#: The hosts a target's source may name: a DNS name or IPv4 address, or an IPv6 address
#: in brackets (pdbsync.rsync.url reads any host; this is what a config may give).
_SOURCE_HOST = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")

CONFIG_HELP = (
    "create one with 'pdb-sync config init', or point to one with --config PATH or PDB_SYNC_CONFIG"
)


@dataclass(frozen=True)
class Target:
    """One named ``[sync.custom.NAME]`` entry, as written in the config."""

    name: str
    url: str  # "" for a mirror = "auto" target until the mirror is chosen
    dest: str
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: the mirror id serving ``path`` (None: the target gives its own ``url``)
    mirror: str | None = None
    path: str | None = None  # inside the mirror's data tree
    #: why this mirror: "target", "[sync] mirror", "--mirror", "default", "url"
    mirror_reason: str = "url"


@dataclass(frozen=True)
class Config:
    """A validated config: where it came from, the mirror root, and the targets in order."""

    path: Path
    pdb_dir: Path | None
    targets: dict[str, Target]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: the mirror registry: built-ins with ``[mirrors.NAME]`` applied
    mirrors: dict[str, mirrors.Mirror] = field(default_factory=mirrors.registry)
    #: one line per thing a person should know but that is not an error (Rust-only keys)
    warnings: tuple[str, ...] = ()
    #: after an ``auto`` choice: the reachable mirrors, best first (the fallbacks' order)
    mirror_order: tuple[str, ...] = ()
    #: the option layers the config check built (see options.CheckedLayers)
    checked: options.CheckedLayers = field(
        default_factory=options.CheckedLayers, compare=False, repr=False
    )

    @cached_property
    def base_dir(self) -> Path:
        """Where relative option paths (``exclude_from``...) are read from: the config's
        own directory. Once per config, not once per target (20,000 cwd lookups)."""
        return self.path.absolute().parent

    @property
    def sync_table(self) -> Mapping[str, Any]:
        sync = self.raw.get("sync", {})
        return sync if isinstance(sync, Mapping) else {}

    @property
    def require_safe_rsync(self) -> bool:
        """``[sync] require_safe_rsync``: refuse a vulnerable rsync instead of warning."""
        return bool(self.sync_table.get("require_safe_rsync", False))

    @property
    def rsync_patched(self) -> str | None:
        """``[sync] rsync_patched``: the operator says this rsync build carries the fixes."""
        return self.sync_table.get("rsync_patched")

    @property
    def mirror_selection(self) -> Mapping[str, Any]:
        """``[mirror_selection]``: ``latency_cache_ttl``, ``preferred_region``, ``auto_select``."""
        table = self.raw.get("mirror_selection", {})
        return table if isinstance(table, Mapping) else {}

    @property
    def min_free(self) -> str | int | None:
        """``[doctor] min_free``: below this much free space, ``env doctor`` warns."""
        table = self.raw.get("doctor", {})
        return table.get("min_free") if isinstance(table, Mapping) else None


def target_rows(config: Config) -> list[dict[str, Any]]:
    """One row per target, in config order, for the two listings (``sync --list`` and
    ``config list``), so both always show the same values for a target.
    """
    return [
        {
            "name": target.name,
            "url": target.url or None,  # None: mirror = "auto", chosen when a sync starts
            "dest": target.dest,
            "preset": target.settings.get("preset"),
            "description": target.description,
            "mirror": target.mirror,
            "mirror_reason": target.mirror_reason,
        }
        for target in config.targets.values()
    ]


def source_text(row: Mapping[str, Any]) -> str:
    """A target row's source for people: the url, and which mirror it is on and why."""
    if row.get("mirror") is None:
        return str(row["url"])
    if row.get("url") is None:
        return f"(mirror auto, chosen when a sync starts; from {row['mirror_reason']})"
    return f"{row['url']} (mirror {row['mirror']}, from {row['mirror_reason']})"


def find_config(explicit: str | None, environ: Mapping[str, str], label: str = "--config") -> Path:
    """The config path: ``--config``, then ``PDB_SYNC_CONFIG``, then the XDG locations.

    ``--config ''`` is refused (UsageError, exit 2) rather than read as "no --config": a
    script whose variable came out empty must not quietly use some other config. An empty
    ``PDB_SYNC_CONFIG`` counts as unset, as shells and most tools treat an empty variable.
    ``label`` names ``explicit`` in that message (a library caller's argument).
    """
    if explicit == "":
        raise UsageError(
            f"{label} {explicit!r}: an empty path names no config file; "
            f"give a path, or leave {label} out to use the default"
        )
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("PDB_SYNC_CONFIG"):
        return Path(environ["PDB_SYNC_CONFIG"]).expanduser()
    candidates = []
    if environ.get("XDG_CONFIG_HOME"):
        candidates.append(Path(environ["XDG_CONFIG_HOME"]) / "pdb-sync" / "config.toml")
    home = environ.get("HOME") or str(Path.home())
    candidates.append(Path(home) / ".config" / "pdb-sync" / "config.toml")
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path`` as TOML, turning every failure into one clear :class:`ConfigError`."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; {CONFIG_HELP}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: config file is not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None


def load_config(path: Path, mirror: str | None = None) -> Config:
    """Read and fully validate the config at ``path``; raise :class:`ConfigError` if bad.

    ``mirror``: ``--mirror ID`` of this run, the mirror of every target that gives a
    ``path`` (a target's ``url`` still wins). Keys only the Rust pdb-sync uses are left
    out and named in ``Config.warnings``.
    """
    data, ignored, found = compat.normalise(read_toml(path))
    checked = options.CheckedLayers()
    found += config_problems(data, base_dir=path.absolute().parent, checked=checked)
    if not found and mirror is not None:
        problem = mirror_name_problem(mirror, mirrors.registry(data.get("mirrors")))
        if problem:
            raise ConfigError(f"--mirror: {problem}")
    if found:
        raise ConfigError(f"{path}: {found[0]}", [f"{path}: {p}" for p in found])
    warnings = (f"{path}: {compat.warning(ignored)}",) if ignored else ()
    return replace(build_config(path, data, mirror, warnings), checked=checked)


def mirror_name_problem(name: str, registry: Mapping[str, mirrors.Mirror]) -> str | None:
    """Why ``name`` is not a mirror of ``registry`` (nor ``auto``), or None."""
    if name.lower() == mirrors.AUTO or mirrors.canonical_id(name, registry):
        return None
    return mirrors.unknown_mirror(name, registry)


def _target_mirror(
    entry: Mapping[str, Any], data: Mapping[str, Any], cli_mirror: str | None
) -> tuple[str, str]:
    """(mirror name as given, reason) for a target that gives ``path`` and no ``url``."""
    if cli_mirror:
        return cli_mirror, "--mirror"
    if entry.get("mirror"):
        return entry["mirror"], "target"
    sync = data.get("sync")
    if isinstance(sync, Mapping) and isinstance(sync.get("mirror"), str):
        return sync["mirror"], "[sync] mirror"
    selection = data.get("mirror_selection")
    if isinstance(selection, Mapping) and selection.get("auto_select") is True:
        return mirrors.AUTO, "[mirror_selection] auto_select"
    return mirrors.DEFAULT_MIRROR, "default"


def build_config(
    path: Path,
    data: Mapping[str, Any],
    cli_mirror: str | None = None,
    warnings: tuple[str, ...] = (),
) -> Config:
    """Turn already-validated (and compat-normalised) TOML data into a :class:`Config`.

    A target with ``mirror``/``path`` gets its URL here (the mirror's data tree + path),
    so everything after this sees a plain ``url``; only ``auto`` is left for the sync to
    choose (``url`` is "" until then).
    """
    registry = mirrors.registry(data.get("mirrors"))
    pdb_dir_text = data.get("paths", {}).get("pdb_dir")
    pdb_dir = None
    if pdb_dir_text:
        pdb_dir = Path(pdb_dir_text).expanduser()
        if not pdb_dir.is_absolute():
            # Relative to the config file, not to wherever cron happens to start us.
            pdb_dir = path.parent / pdb_dir
    targets = {}
    own = ("url", "dest", "description", "mirror", "path")
    for name, entry in data.get("sync", {}).get("custom", {}).items():
        settings = {k: v for k, v in entry.items() if k not in own}
        url, mirror, reason = entry.get("url", ""), None, "url"
        if not url:
            given, reason = _target_mirror(entry, data, cli_mirror)
            mirror = mirrors.canonical_id(given, registry) or mirrors.AUTO
            if mirror != mirrors.AUTO:
                url = registry[mirror].source(entry["path"])
        targets[name] = Target(
            name=name,
            url=url,
            dest=entry["dest"],
            description=entry.get("description", ""),
            settings=settings,
            mirror=mirror,
            path=entry.get("path") if mirror else None,
            mirror_reason=reason,
        )
    return Config(
        path=path,
        pdb_dir=pdb_dir,
        targets=targets,
        defaults=data.get("sync", {}).get("defaults", {}),
        raw=data,
        mirrors=registry,
        warnings=warnings,
    )


def with_mirror_choice(config: Config, order: tuple[str, ...], reason: str) -> Config:
    """``config`` with every ``auto`` target resolved to ``order[0]`` (``reason`` says why)."""
    first = config.mirrors[order[0]]
    targets = {
        name: (
            replace(
                target, url=first.source(target.path or ""), mirror=first.id, mirror_reason=reason
            )
            if target.mirror == mirrors.AUTO
            else target
        )
        for name, target in config.targets.items()
    }
    return replace(config, targets=targets, mirror_order=tuple(order))


def config_problems(
    data: Mapping[str, Any],
    base_dir: Path | None = None,
    checked: options.CheckedLayers | None = None,
) -> list[str]:
    """Every problem in the parsed config, each naming its key path.

    ``checked``, if given, keeps the option layers built here, so that a target's options
    are not checked a second time when they are resolved (:func:`target_options`).

    Option values are checked one layer at a time here (sizes, timeouts, patterns,
    ``*_from`` files relative to ``base_dir``); combinations across layers are checked
    when a target's options are resolved, because the command line may still change them.
    """
    found = [_describe_schema_error(error) for error in _schema_errors(data)]
    # With structural problems, still check names, urls and dests (every problem at once),
    # but not option values: the schema has already named the wrongly typed ones.
    structural = bool(found)
    sync = data.get("sync")
    sync = sync if isinstance(sync, Mapping) else {}
    custom = sync.get("custom")
    custom = custom if isinstance(custom, Mapping) else {}
    if not structural:
        defaults = sync.get("defaults", {})
        bad_defaults: list[options.Problem] = []
        defaults_layer = options.make_layer(
            options.LAYER_DEFAULTS, defaults, "sync.defaults.", base_dir, bad_defaults
        )
        found += [str(problem) for problem in bad_defaults]
        if checked is not None:
            checked.defaults = defaults_layer
    registry, mirror_problems = _registry_problems(data)
    found += mirror_problems
    doctor = data.get("doctor")
    if isinstance(doctor, Mapping) and isinstance(doctor.get("min_free"), str | int):
        try:
            options.parse_size(doctor["min_free"])
        except ValueError as exc:
            found.append(f"doctor.min_free: {exc}")
    dests: dict[str, str] = {}
    for name, entry in custom.items():
        if not isinstance(entry, Mapping):
            continue
        where = f"sync.custom.{name}"
        if not NAME_PATTERN.match(name):
            found.append(
                f"{where}: target name {name!r} is not allowed; use letters, digits, "
                "'.', '_' or '-' (at most 64, starting with a letter or digit)"
            )
        found += _source_problems(where, entry, data, registry)
        found += _weekly_problems(where, entry)
        # An empty dest is the schema's (minLength); one line per problem is enough.
        dest = entry.get("dest") if isinstance(entry.get("dest"), str) else ""
        problem = dest_problem(dest) if dest else None
        if problem:
            found.append(f"{where}.dest: {problem}")
        elif dest:
            dests[name] = dest
        if structural:
            continue
        # Target layers only: [sync.defaults] was checked once above.
        layers, problems = options.target_layers(name, entry, {}, base_dir)
        found += [str(problem) for problem in problems]
        if checked is not None and not problems:
            checked.targets[name] = layers
    return found + dest_overlaps(dests)


def _registry_problems(data: Mapping[str, Any]) -> tuple[dict[str, mirrors.Mirror], list[str]]:
    """The registry ``[mirrors.NAME]`` makes, and the problems of those tables and of
    ``[sync] mirror``."""
    found = []
    table = data.get("mirrors")
    table = table if isinstance(table, Mapping) else {}
    for name, entry in table.items():
        if not isinstance(entry, Mapping):
            continue
        where = f"mirrors.{name}"
        if not NAME_PATTERN.match(name) or name.lower() == mirrors.AUTO:
            found.append(f"{where}: mirror name {name!r} is not allowed (and 'auto' is taken)")
        url = entry.get("url")
        if isinstance(url, str):
            problem = url_problem(url)
            if problem:
                found.append(f"{where}.url: {problem}")
        elif "url" not in entry and mirrors.canonical_id(name) is None:
            found.append(f"{where}: missing required key 'url' (a new mirror needs one)")
    usable = {
        name: entry
        for name, entry in table.items()
        if isinstance(entry, Mapping) and isinstance(entry.get("url", ""), str)
    }
    registry = mirrors.registry(usable)
    sync = data.get("sync")
    default = sync.get("mirror") if isinstance(sync, Mapping) else None
    if isinstance(default, str):
        problem = mirror_name_problem(default, registry)
        if problem:
            found.append(f"sync.mirror: {problem}")
    return registry, found


def _source_problems(
    where: str,
    entry: Mapping[str, Any],
    data: Mapping[str, Any],
    registry: Mapping[str, mirrors.Mirror],
) -> list[str]:
    """A target's source: a valid ``url``, or a ``path`` on a known mirror."""
    url, path, mirror = entry.get("url"), entry.get("path"), entry.get("mirror")
    if isinstance(url, str):
        problem = url_problem(url)
        return [f"{where}.url: {problem}"] if problem else []
    if url is not None:
        return []  # wrongly typed: the schema said so
    if not isinstance(path, str):
        if path is None:
            hint = " (with a mirror)" if mirror is not None else ""
            return [f"{where}: missing required key 'url' (or 'path'{hint})"]
        return []
    found = []
    problem = mirrors.path_problem(path)
    if problem:
        return [f"{where}.path: {problem}"]
    if isinstance(mirror, str):
        problem = mirror_name_problem(mirror, registry)
        if problem:
            return [f"{where}.mirror: {problem}"]
    given, _reason = _target_mirror(entry, data, None)
    mirror_id = mirrors.canonical_id(given, registry) if isinstance(given, str) else None
    if mirror_id is not None:
        problem = url_problem(registry[mirror_id].source(path))
        if problem:
            found.append(f"{where}.path: on mirror {mirror_id!r}: {problem}")
    return found


#: A weekly target's full sync at least this often, unless it says ``full_every``.
DEFAULT_FULL_EVERY = "28d"


@dataclass(frozen=True)
class WeeklySettings:
    """A weekly target's update settings, resolved (pdbsync.weekly.plan reads them)."""

    layout: str
    data_root: str
    status_url: str
    full_every_s: float


def _weekly_problems(where: str, entry: Mapping[str, Any]) -> list[str]:
    """``layout`` known, ``full_every`` a duration, and a weekly target's layout known
    from its url (or path) or its ``layout`` key."""
    layout = entry.get("layout")
    if layout is not None and isinstance(layout, str):
        problem = layouts.layout_problem(layout)
        if problem:
            return [f"{where}.layout: {problem}"]
    every = entry.get("full_every")
    if isinstance(every, str):
        try:
            parse_duration(every)
        except ValueError as exc:
            return [f"{where}.full_every: {exc}"]
    if entry.get("update_mode") != "weekly" or layout is not None:
        return []
    source = entry.get("url") if isinstance(entry.get("url"), str) else None
    if source is None and isinstance(entry.get("path"), str):
        source = "rsync://mirror/module/" + entry["path"]
    if source is not None and layouts.detect(source) is None:
        return [
            f"{where}: update_mode 'weekly' needs a layout, and the source does not end in "
            f"a known data-type path; set layout to one of: {layouts.known_layouts()}"
        ]
    return []


def weekly_settings(target: Target) -> WeeklySettings | None:
    """The target's weekly settings, or None when it runs full syncs only (the default,
    or a ``mirror = "auto"`` target whose url is not chosen yet)."""
    settings = target.settings
    if settings.get("update_mode", "full") != "weekly" or not target.url:
        return None
    place = layouts.detect(target.url, settings.get("layout"))
    if place is None:  # checked when loaded; a url from --mirror may end elsewhere
        raise ConfigError(
            f"sync.custom.{target.name}: update_mode 'weekly' needs a layout, and "
            f"{target.url} does not end in a known data-type path; set layout to one of: "
            f"{layouts.known_layouts()}"
        )
    status_url = settings.get("status_url") or place.data_root + "status/"
    every = parse_duration(settings.get("full_every", DEFAULT_FULL_EVERY))
    return WeeklySettings(place.layout.name, place.data_root, status_url, every)


@dataclass(frozen=True)
class FileCheck:
    """What :func:`check_file` found: every problem, one line each, and the loaded
    config when there is none (so a caller need not read and check the file again)."""

    problems: list[str]
    config: Config | None


def check_file(path: Path, environ: Mapping[str, str] | None = None) -> FileCheck:
    """Every problem of the config at ``path`` (``config validate``, ``env doctor``).

    Beyond :func:`load_config`, this resolves every target's options without command-line
    flags, so conflicting combinations (``partial_dir`` without ``partial``...) show too.
    When the mirror root is known (``[paths] pdb_dir``, else ``PDB_SYNC_DIR`` in
    ``environ``), dests and absolute backup/partial dirs are also judged by where they
    resolve on this machine, as ``sync`` will judge them, and so are every target's
    partial dir, backup dir and lock file (pdbsync.config.write_rules). The file is read and each
    option layer checked once: with tens of thousands of targets, twice is felt
    (docs/benchmarks.md).
    """
    try:
        config = load_config(path)
    except ConfigError as exc:  # unreadable, or problems of structure and single values
        return FileCheck(exc.problems, None)
    from pdbsync.config import write_rules

    found: list[str] = []
    every: list[write_rules.Place] = []  # every target's dirs, checked against each other
    root = index = None
    if config.pdb_dir is not None or (environ or {}).get("PDB_SYNC_DIR"):
        pdb_dir = resolve_pdb_dir(config, None, environ or {})
        written = {t.name: t.dest for t in config.targets.values()}
        dests = resolve_dests(pdb_dir, written)
        found += dests.problems
        root = dests.root
        index = write_rules.Dests(dests.dests, written)
    for target in config.targets.values():
        try:
            resolved = target_options(config, target.name)
        except ConfigError as exc:
            found += exc.problems
            continue
        if root is not None:
            found += option_path_problems(root, target.name, resolved)
        if index is not None and target.name in dests.dests:
            places = write_rules.target_places(target.name, dests.dests[target.name], resolved)
            found += write_rules.target_problems(places, index)
            every += places
    found += write_rules.dir_problems(every, every)
    return FileCheck([f"{path}: {problem}" for problem in found], None if found else config)


def target_options(
    config: Config, name: str, cli: options.Layer | None = None
) -> options.RsyncOptions:
    """The resolved rsync options of target ``name`` (command line first, if given)."""
    target = config.targets[name]
    return options.resolve(
        name,
        target.settings,
        config.defaults,
        config.base_dir,
        cli,
        checked=config.checked.layers_of(name),
    )


def _schema_errors(data: Mapping[str, Any]) -> list[Any]:
    # The same config against the same schema passed before: skip importing jsonschema,
    # a tenth of a second of every run's start (the rules below still run every time).
    if contracts.known_valid("config", data):
        return []
    errors = sorted(
        contracts.validator("config").iter_errors(data),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if not errors:
        contracts.remember_valid("config", data)
    return errors


def _describe_schema_error(error: Any) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    prefix = f"{where}: " if where else ""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extras = [key for key in error.instance if key not in allowed]
        parts = []
        for key in extras:
            import difflib  # only for a key that is not known

            guess = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            known = f"; known keys: {', '.join(allowed)}" if allowed and not guess else ""
            parts.append(f"unknown key {key!r}{hint}{known}")
        return prefix + "; ".join(parts)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{prefix}missing required key {missing!r}"
    if error.validator == "enum" and error.absolute_path and error.absolute_path[-1] == "preset":
        valid = ", ".join(str(v) for v in error.validator_value)
        return f"{prefix}unknown preset {error.instance!r}; valid presets: {valid}"
    if error.validator == "type":
        return f"{prefix}must be of type {error.validator_value}, not {error.instance!r}"
    if error.validator == "oneOf" and "x-expected" in error.schema:  # e.g. split: N or "auto"
        return f"{prefix}must be {error.schema['x-expected']}, not {error.instance!r}"
    return f"{prefix}{error.message}"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable rsync daemon source, or None if it is."""
    if paths.has_control_chars(url):
        # Before anything else: a NUL would otherwise reach exec and fail in the worker.
        return f"{url!r} contains a control character"
    bad = sorted(set(url) & UNSAFE_URL_CHARS)
    if bad:
        shown = " ".join(repr(c) for c in bad)
        return f"{url!r} contains characters unsafe in a shell or rsync argument: {shown}"
    if url.startswith("-") or " -" in url or "--" in url:
        return f"{url!r} looks like an embedded rsync option; give only the source URL"
    parsed = rsync_url.daemon(url)
    if (
        parsed is None
        or not _SOURCE_HOST.fullmatch(parsed.host)
        or (not parsed.scheme and ":" in parsed.path)  # host::module:x
    ):
        return (
            f"{url!r} is not an rsync daemon URL; use host::module/path or "
            "rsync://host[:port]/module/path"
        )
    if paths.escapes(parsed.path):
        return f"{url!r} contains '..'; name the module path directly"
    if not parsed.path.strip("/"):
        return f"{url!r} names no rsync module"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"{url!r} has port {parsed.port}, outside 1..65535"
    return None


def dest_problem(dest: str) -> str | None:
    """Why ``dest`` would not be a directory of its own inside pdb_dir, or None if it is.

    pdb_dir itself is refused too: a target there with ``delete`` would remove every
    other target's tree (and anything else kept in the mirror root).
    """
    if os.path.isabs(dest) or dest.startswith("~"):
        return f"{dest!r} is absolute; dest is relative to pdb_dir (e.g. 'mmCIF')"
    if paths.escapes(dest):
        return f"{dest!r} escapes pdb_dir ('..' is not allowed)"
    if dest.startswith("-"):
        return f"{dest!r} starts with '-' and would be read as an rsync option"
    if paths.has_control_chars(dest):
        return f"{dest!r} contains a control character"
    if not _dest_parts(dest):
        return (
            f"{dest!r} is pdb_dir itself; give the target a directory of its own "
            "(e.g. 'mmCIF'), or a sync with delete would remove every other target's files"
        )
    return None


def _dest_parts(dest: str) -> tuple[str, ...]:
    """The path components of ``dest`` as rsync will see them (``./a//b/`` is ``a/b``)."""
    return paths.parts(dest)


#: Said with every overlap of two dests (config validation and ``--profile-add``).
SHARED_TREE_HELP = "targets must not share a tree (one could delete the other's files)"


def dest_overlap(name: str, dest: str, other_name: str, other_dest: str) -> str | None:
    """The problem line if targets ``name`` and ``other_name`` share a tree, else None.

    Two targets may not write to the same directory or one inside the other: each rsync
    treats its dest as its own, so one with ``delete`` removes the other's files, and
    even without it two runs fight over the same paths. The line names the key of the
    inner (or, when equal, of ``name``) target first.
    """
    parts, other_parts = _dest_parts(dest), _dest_parts(other_dest)
    if parts == other_parts:
        relation = paths.SAME
    elif parts[: len(other_parts)] == other_parts:
        relation = paths.INSIDE
    elif other_parts[: len(parts)] == parts:
        name, dest, other_name, other_dest = other_name, other_dest, name, dest
        relation = paths.INSIDE
    else:
        return None
    return _overlap_line(name, repr(dest), relation, other_name, repr(other_dest))


def _overlap_line(name: str, shown: str, relation: str, other_name: str, other: str) -> str:
    said = "is the same directory as" if relation == paths.SAME else "is inside"
    return (
        f"sync.custom.{name}.dest: {shown} {said} sync.custom.{other_name}.dest {other}; "
        f"{SHARED_TREE_HELP}"
    )


def dest_overlaps(dests: Mapping[str, str]) -> list[str]:
    """The targets (in config order) whose dests overlap, each with one target it overlaps.

    ``dests`` maps target name to dest and should hold only dests that passed
    :func:`dest_problem`. A target inside several others is named with the nearest; one
    equal to several, with the first of them in config order.
    """
    named = list(dests.items())
    found = paths.overlaps([_dest_parts(dest) for _name, dest in named])
    return [
        _overlap_line(named[i][0], repr(named[i][1]), relation, named[j][0], repr(named[j][1]))
        for i, j, relation in found
    ]


@dataclass(frozen=True)
class ResolvedDests:
    """Where each target's dest resolves under one mirror root (see :func:`resolve_dests`)."""

    root: Path  # pdb_dir, every symlink in it followed
    dests: dict[str, str]  # target name → its dest, resolved (text: tens of thousands)
    problems: list[str]


def resolve_dests(pdb_dir: Path, dests: Mapping[str, str]) -> ResolvedDests:
    """Resolve every dest under ``pdb_dir`` and judge it by where it really points.

    A symlink in a dest (even a dangling one: ``mkdir -p`` would create its target) must
    not take rsync, and its ``delete``, outside pdb_dir or onto pdb_dir itself; and two
    targets whose dests differ as written can still be one tree through a link, so the
    overlap rule is applied again to the resolved paths. ``dests`` should hold only dests
    that passed :func:`dest_problem` and :func:`dest_overlaps`.
    """
    resolver = paths.Resolver(pdb_dir)
    root = resolver.root
    shown_root = repr(str(pdb_dir)) + ("" if root == pdb_dir else f" (resolves to {str(root)!r})")
    resolved: dict[str, str] = {}
    problems: list[str] = []
    inside: list[tuple[str, tuple[str, ...]]] = []
    for name, dest in dests.items():
        real = resolver.resolve(_dest_parts(dest))
        under = paths.below(real, root)
        if under:
            resolved[name] = real
            inside.append((name, under))
            continue
        where = f"sync.custom.{name}.dest: {str(pdb_dir / dest)!r} resolves to {real!r}"
        if under is None:
            problems.append(
                f"{where}, outside pdb_dir {shown_root}; refused: a symlink must not take "
                "rsync (and its deletes) out of the mirror"
            )
        elif not under:
            problems.append(
                f"{where}, pdb_dir itself; refused: a sync with delete there would remove "
                "every other target's files"
            )
    for i, j, relation in paths.overlaps([under for _name, under in inside]):
        (name, under), (other_name, other_under) = inside[i], inside[j]
        problems.append(
            _overlap_line(
                name,
                _shown_dest(dests[name], under),
                relation,
                other_name,
                _shown_dest(dests[other_name], other_under),
            )
        )
    return ResolvedDests(root, resolved, problems)


def _shown_dest(dest: str, under: tuple[str, ...]) -> str:
    """``'dest'``, plus where it resolves when a symlink makes that differ."""
    if _dest_parts(dest) == under:
        return repr(dest)
    return f"{dest!r} (resolves to {'/'.join(under)!r})"


def option_path_problems(root: Path, target_name: str, resolved: options.RsyncOptions) -> list[str]:
    """An absolute ``partial_dir`` that resolves outside pdb_dir (``root``).

    rsync moves what it finds in a partial dir into place, so it is held to the rule
    dests are. An absolute ``backup_dir`` may lie outside pdb_dir: a place for old
    copies is a deliberate choice (``/backup/pdb/structures``). Both, and relative ones
    (relative to the dest, without ``..``: options.check_value), must also stay apart
    from every target's tree: pdbsync.config.write_rules.
    """
    value = resolved.partial_dir
    if value is None or not resolved.partial or not os.path.isabs(value):
        return []
    real = paths.real(value)
    if paths.below(real, root):
        return []
    return [
        f"target {target_name!r}: {resolved.where.get('partial_dir', 'partial_dir')}: "
        f"{value!r} resolves to {str(real)!r}, not inside pdb_dir {str(root)!r}; refused: "
        "rsync would write there"
    ]


def resolve_pdb_dir(config: Config, cli_pdb_dir: str | None, environ: Mapping[str, str]) -> Path:
    """The mirror root: ``--pdb-dir``/``--dest``, else ``[paths] pdb_dir``, else PDB_SYNC_DIR."""
    if cli_pdb_dir:
        return Path(cli_pdb_dir).expanduser().absolute()
    if config.pdb_dir is not None:
        return config.pdb_dir.absolute()
    if environ.get("PDB_SYNC_DIR"):
        return Path(environ["PDB_SYNC_DIR"]).expanduser().absolute()
    raise ConfigError(
        f"{config.path}: no mirror root; set [paths] pdb_dir, PDB_SYNC_DIR or --pdb-dir"
    )
