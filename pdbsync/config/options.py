"""rsync options: the option table, presets, the layered merge and the flags they make.

Every tunable rsync behaviour is one row of :data:`OPTIONS` (config key → CLI flag →
rsync flag). A target's options are merged from six layers, highest first: the command
line, ``[sync.custom.NAME.options]``, the target's ``preset``, ``[sync.defaults]``,
legacy ``rsync_<option>`` keys on the target, and the built-in defaults (all off: rsync's
own default already keeps a cut-off file out of its final name, and ``partial``'s
``--partial-dir`` makes rsync look for a partial file beside every file it examines, a
cost every re-sync pays for a resume that only big files need). The result,
:class:`RsyncOptions`, is frozen and remembers which layer each value came from, so
``config show`` and ``sync --dry-run -v`` can say why a flag is there.

Values are checked where they enter (one layer at a time: sizes, timeouts, patterns that
could smuggle in options, missing ``*_from`` files) and again after the merge for
combinations that make no sense (``partial_dir`` without ``partial`` ...). Every problem
is one line naming the target and the key, raised as :class:`ConfigError` (exit 2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdbsync.errors import ConfigError
from pdbsync.numbers import decimal

#: The flags every transfer gets: archive mode (recursive, links, perms, times...).
BASE_FLAGS = ("-a",)

#: Layer names, highest precedence first (as shown by ``config show``).
LAYER_CLI = "cli"
LAYER_TARGET = "target"
LAYER_PRESET = "preset"
LAYER_DEFAULTS = "defaults"
LAYER_LEGACY = "legacy"
LAYER_BUILTIN = "built-in"
LAYERS = (LAYER_CLI, LAYER_TARGET, LAYER_PRESET, LAYER_DEFAULTS, LAYER_LEGACY, LAYER_BUILTIN)

#: Prefix of the keys older configs used directly on the target (``rsync_delete = true``).
LEGACY_PREFIX = "rsync_"

#: Where interrupted transfers keep their partial files (inside each destination
#: directory) when ``partial`` is on and ``partial_dir`` says nothing else: never a
#: half-written file in place.
DEFAULT_PARTIAL_DIR = ".rsync-partial"
#: The longest wait between attempts (``retry_delay``, ``--retry-delay``): one day. A
#: larger value is a typo, and inf/nan would make a run hang or crash.
MAX_RETRY_DELAY = 86400.0


@dataclass(frozen=True)
class OptionSpec:
    """One row of the option table."""

    key: str  # config key, and the field of RsyncOptions
    kind: str  # bool | int | size | str | list | path | positive | count | delay
    rsync: str | None  # the rsync flag (None: pdb-sync's own, e.g. retry)
    cli: str | None  # the CLI flag on `sync` (None: config only)
    help: str


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("delete", "bool", "--delete", "--delete", "delete local files gone upstream"),
    OptionSpec("compress", "bool", "-z", "--compress", "compress data in transit"),
    OptionSpec("checksum", "bool", "-c", "--checksum", "compare files by checksum"),
    OptionSpec("size_only", "bool", "--size-only", "--size-only", "compare by size only"),
    OptionSpec("ignore_times", "bool", "--ignore-times", "--ignore-times", "always transfer"),
    OptionSpec("partial", "bool", "--partial", "--partial", "keep partially sent files"),
    OptionSpec("backup", "bool", "--backup", "--backup", "keep replaced/deleted files"),
    OptionSpec("verbose", "bool", "-v", "--rsync-verbose", "rsync lists the files it sends"),
    # Not rsync's -q: that would also silence --stats (the summary's numbers) and a plan's
    # itemized lines. pdb-sync drops rsync's stdout chatter itself; errors still show.
    OptionSpec("quiet", "bool", "", "--rsync-quiet", "show rsync's errors only"),
    OptionSpec(
        "itemize_changes", "bool", "--itemize-changes", "--itemize-changes", "one line per change"
    ),
    OptionSpec("dry_run", "bool", "-n", "--dry-run", "print the rsync command lines, run none"),
    OptionSpec("modify_window", "int", "--modify-window", "--modify-window", "mtime tolerance (s)"),
    OptionSpec("partial_dir", "str", "--partial-dir", "--partial-dir", "where partials wait"),
    OptionSpec("max_size", "size", "--max-size", "--max-size", "skip larger files (10M, 5G)"),
    OptionSpec("min_size", "size", "--min-size", "--min-size", "skip smaller files (500K)"),
    OptionSpec("timeout", "positive", "--timeout", "--timeout", "I/O timeout (s)"),
    OptionSpec("contimeout", "positive", "--contimeout", "--contimeout", "connect timeout (s)"),
    OptionSpec("bwlimit", "positive", "--bwlimit", "--bwlimit", "bandwidth limit (KB/s)"),
    OptionSpec("backup_dir", "str", "--backup-dir", "--backup-dir", "where backups go"),
    OptionSpec("chmod", "str", "--chmod", "--chmod", "permissions of received files"),
    OptionSpec("include", "list", "--include", "--include", "include pattern (repeatable)"),
    OptionSpec("exclude", "list", "--exclude", "--exclude", "exclude pattern (repeatable)"),
    OptionSpec("include_from", "path", "--include-from", "--include-from", "include patterns file"),
    OptionSpec("exclude_from", "path", "--exclude-from", "--exclude-from", "exclude patterns file"),
    OptionSpec("retry", "count", None, "--retry", "extra attempts after a transient failure"),
    OptionSpec("retry_delay", "delay", None, "--retry-delay", "seconds between tries (or backoff)"),
)
SPECS: dict[str, OptionSpec] = {spec.key: spec for spec in OPTIONS}
#: Keys that map to rsync flags (retry/retry_delay are pdb-sync's own).
RSYNC_KEYS = tuple(spec.key for spec in OPTIONS if spec.rsync is not None)

PRESETS: dict[str, dict[str, Any]] = {
    "safe": {"compress": True, "checksum": True, "partial": True, "verbose": True},
    "fast": {"delete": True, "compress": True, "partial": True, "quiet": True},
    "minimal": {},
    "conservative": {
        "compress": True,
        "checksum": True,
        "partial": True,
        "backup": True,
        "verbose": True,
    },
}


@dataclass(frozen=True)
class RsyncOptions:
    """The resolved options of one target, and the layer each value came from."""

    delete: bool = False
    compress: bool = False
    checksum: bool = False
    size_only: bool = False
    ignore_times: bool = False
    partial: bool = False  # on in the presets, the big-file profiles, or where partial_dir is set
    backup: bool = False
    verbose: bool = False
    quiet: bool = False
    itemize_changes: bool = False
    dry_run: bool = False
    modify_window: int | None = None
    partial_dir: str | None = DEFAULT_PARTIAL_DIR
    max_size: int | None = None
    min_size: int | None = None
    timeout: int | None = None
    contimeout: int | None = None
    bwlimit: int | None = None
    backup_dir: str | None = None
    chmod: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_from: str | None = None
    exclude_from: str | None = None
    retry: int = 0
    retry_delay: float | None = None
    #: option key → layer name (one of LAYERS) the value came from
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: option key → where it was written (key path or CLI flag), for messages
    where: Mapping[str, str] = field(default_factory=dict, compare=False)

    def values(self) -> dict[str, Any]:
        """Every option key with its value (lists as lists), in table order."""
        out = {}
        for spec in OPTIONS:
            value = getattr(self, spec.key)
            out[spec.key] = list(value) if isinstance(value, tuple) else value
        return out

    def source(self, key: str) -> str:
        return self.sources.get(key, LAYER_BUILTIN)


@dataclass(frozen=True)
class Layer:
    """One layer's option values (already checked), with where each was written."""

    name: str
    values: Mapping[str, Any]
    where: Mapping[str, str]
    label: str = ""  # e.g. the preset's name


# -- sizes ------------------------------------------------------------------------------

#: ASCII only (as every number: pdbsync.numbers): under IGNORECASE alone, ``\d`` takes
#: other scripts' digits and ``K`` matches the Kelvin sign, which no unit below is.
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(I?B)?\s*$", re.IGNORECASE | re.ASCII)
_POWER = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_size(value: Any) -> int:
    """Bytes from ``500K``, ``10M``, ``5G``, ``5GB``, ``1.5GiB`` or a plain number.

    Like rsync itself: ``K``/``KiB`` are powers of 1024, ``KB`` powers of 1000. The
    result goes to rsync as a plain byte count, so the argv says exactly what is meant.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a size: {value!r}")
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size; use a number with K, M, G or T (e.g. 10M, 5GB)")
    number = decimal(match[1])  # bounded length: 400 digits would overflow int(float())
    unit, suffix = match[2].upper(), (match[3] or "").upper()
    base = 1000 if suffix == "B" else 1024  # "100B" is plain bytes: 1000**0
    return int(number * base ** _POWER[unit])


# -- one layer's values -----------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHMOD = re.compile(r"^[DFugoa0-7rwxXstT+=,-]+$")


def _pattern_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return f"must be a string, not {pattern!r}"
    if not pattern:
        return "empty pattern"
    if _CONTROL.search(pattern):
        return f"{pattern!r} contains a control character"
    if pattern.startswith("-"):
        return f"{pattern!r} starts with '-' and would be read as an rsync option"
    if pattern[:2] in ("+ ", "- ") or pattern.startswith("!"):
        return f"{pattern!r} is rsync filter-rule syntax; give a plain pattern"
    return None


def _path_problem(text: str) -> str | None:
    if not text:
        return "empty path"
    if _CONTROL.search(text):
        return f"{text!r} contains a control character"
    if text.startswith("-"):
        return f"{text!r} starts with '-' and would be read as an rsync option"
    return None


def check_value(key: str, value: Any, base_dir: Path | None) -> Any:
    """The checked, normalised value of option ``key``; ValueError says what is wrong.

    ``base_dir`` anchors relative ``*_from`` paths (the config file's directory, or the
    working directory for command-line values); the file must exist.
    """
    spec = SPECS[key]
    return _CHECKS[spec.kind](spec, value, base_dir)


# One checker per option kind (OptionSpec.kind), so a new kind is one function and one
# row of _CHECKS. Each takes (spec, value, base_dir) and returns the normalised value.


def _check_bool(spec: OptionSpec, value: Any, base_dir: Path | None) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _check_whole(spec: OptionSpec, value: Any, base_dir: Path | None) -> int:
    """``int`` and ``count`` may be 0; ``positive`` (a timeout, a rate) may not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {value!r}")
    if spec.kind == "positive" and value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _check_delay(spec: OptionSpec, value: Any, base_dir: Path | None) -> float:
    """Seconds between attempts: finite and at most :data:`MAX_RETRY_DELAY` (inf or nan
    would make a run hang or crash)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of seconds, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number of seconds, not {value}")
    if value > MAX_RETRY_DELAY:
        raise ValueError(f"must be at most {MAX_RETRY_DELAY:.0f} seconds (a day), got {value}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return float(value)


def _check_size(spec: OptionSpec, value: Any, base_dir: Path | None) -> int:
    return parse_size(value)


def _check_patterns(spec: OptionSpec, value: Any, base_dir: Path | None) -> tuple[str, ...]:
    """One pattern or a list of them; none may read as an rsync option or filter rule."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be a list of patterns, not {value!r}")
    for item in items:
        problem = _pattern_problem(item)
        if problem:
            raise ValueError(problem)
    return tuple(items)


def _checked_text(value: Any) -> str:
    """A string that rsync will read as a path, not as an option."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {value!r}")
    problem = _path_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_file(spec: OptionSpec, value: Any, base_dir: Path | None) -> str:
    """A ``*_from`` file: relative to ``base_dir``, and it must exist now."""
    path = Path(_checked_text(value)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    return str(path)


def _check_text(spec: OptionSpec, value: Any, base_dir: Path | None) -> str:
    """A string option, with the rules of the two that have their own grammar."""
    value = _checked_text(value)
    if spec.key == "chmod" and not _CHMOD.match(value):
        raise ValueError(f"{value!r} is not an rsync --chmod spec (e.g. 'Du+rwx,Fgo-w')")
    if (
        spec.key in ("backup_dir", "partial_dir")
        and not value.startswith("/")
        and ".." in value.split("/")
    ):
        # Relative to the dest; '..' could reach another target's tree or leave pdb_dir.
        # (An absolute one is checked against pdb_dir when the jobs are planned.)
        raise ValueError(f"{value!r} contains '..'; rsync would write outside the dest")
    return value


_CHECKS: dict[str, Callable[[OptionSpec, Any, Path | None], Any]] = {
    "bool": _check_bool,
    "int": _check_whole,
    "positive": _check_whole,
    "count": _check_whole,
    "delay": _check_delay,
    "size": _check_size,
    "list": _check_patterns,
    "path": _check_file,
    "str": _check_text,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an option value: where it was written (a key path such as
    ``sync.custom.mmcif.options.timeout``, or the option key on the command line) and
    what is wrong. Callers word it for their audience (a config line, a flag)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def make_layer(
    name: str,
    raw: Mapping[str, Any],
    where_prefix: str,
    base_dir: Path | None,
    problems: list[Problem],
    *,
    key_prefix: str = "",
    label: str = "",
) -> Layer:
    """Check ``raw`` (keys are option keys, or ``key_prefix`` + key) into a :class:`Layer`.

    Problems are appended to ``problems``; bad values are left out of the layer so one
    mistake is reported once.
    """
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for raw_key, value in raw.items():
        if key_prefix:
            if not raw_key.startswith(key_prefix):
                continue
            key = raw_key[len(key_prefix) :]
        else:
            key = raw_key
        if key not in SPECS:
            continue  # unknown keys are the schema's job (with a did-you-mean)
        location = f"{where_prefix}{raw_key}"
        try:
            values[key] = check_value(key, value, base_dir)
        except ValueError as exc:
            problems.append(Problem(location, str(exc)))
            continue
        where[key] = location
    return Layer(name, values, where, label)


def _unknown_preset(name: object) -> str:
    return f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}"


def preset_layer(name: str | None, where: str) -> Layer | None:
    """The layer a preset contributes; ConfigError names the valid presets if unknown."""
    if name is None:
        return None
    if name not in PRESETS:
        raise ConfigError(f"{where}: {_unknown_preset(name)}")
    values = PRESETS[name]
    return Layer(LAYER_PRESET, values, {key: f"preset {name!r}" for key in values}, name)


def target_layers(
    target_name: str,
    settings: Mapping[str, Any],
    defaults: Mapping[str, Any],
    base_dir: Path | None,
) -> tuple[list[Layer], list[Problem]]:
    """The config's layers for one target (highest first), and the problems found."""
    problems: list[Problem] = []
    prefix = f"sync.custom.{target_name}"
    layers = [
        make_layer(
            LAYER_TARGET, settings.get("options", {}), f"{prefix}.options.", base_dir, problems
        )
    ]
    preset_name = settings.get("preset")
    preset = None
    if preset_name is not None and preset_name not in PRESETS:
        problems.append(Problem(f"{prefix}.preset", _unknown_preset(preset_name)))
    else:
        preset = preset_layer(preset_name, f"{prefix}.preset")
    if preset is not None:
        layers.append(preset)
    layers.append(make_layer(LAYER_DEFAULTS, defaults, "sync.defaults.", base_dir, problems))
    layers.append(
        make_layer(
            LAYER_LEGACY, settings, f"{prefix}.", base_dir, problems, key_prefix=LEGACY_PREFIX
        )
    )
    return layers, problems


# -- merging ----------------------------------------------------------------------------


def merge(layers: list[Layer]) -> RsyncOptions:
    """The first layer that sets a key wins; unset keys keep the built-in default.

    Lists (include/exclude) are replaced, not appended: the layer that wins owns the
    whole list, so what ``config show`` reports is exactly what rsync gets.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    where: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.values.items():
            if key in values:
                continue
            values[key] = value
            sources[key] = layer.name if not layer.label else f"{layer.name} {layer.label}"
            where[key] = layer.where.get(key, layer.name)
    if "partial_dir" in values and "partial" not in values:
        # A partial_dir asks for partial files; configs written when partial was on by
        # default keep their meaning.
        values["partial"] = True
        sources["partial"] = sources["partial_dir"]
        where["partial"] = f"implied by {where['partial_dir']}"
    return RsyncOptions(**values, sources=sources, where=where)


def conflicts(options: RsyncOptions) -> list[Problem]:
    """Combinations that make no sense, each naming where the deciding key was set."""
    found: list[Problem] = []

    def at(key: str) -> str:
        return options.where.get(key, key)

    if (
        not options.partial
        and options.source("partial_dir") != LAYER_BUILTIN
        and _rank(options, "partial_dir") <= _rank(options, "partial")
    ):
        # A partial_dir set where partial is off (or above it) is a mistake; one from a
        # lower layer (the built-in default, [sync.defaults] under a target's or the
        # command line's partial = false) is simply not used.
        found.append(Problem(at("partial_dir"), "partial_dir needs partial = true"))
    if options.backup_dir is not None and not options.backup:
        found.append(Problem(at("backup_dir"), "backup_dir needs backup = true"))
    if options.verbose and options.quiet:
        found.append(
            Problem(
                at("quiet"),
                f"quiet conflicts with verbose (set at {at('verbose')}); turn one of them off",
            )
        )
    if options.size_only and options.checksum:
        found.append(
            Problem(at("size_only"), f"size_only conflicts with checksum (set at {at('checksum')})")
        )
    if options.size_only and options.ignore_times:
        found.append(
            Problem(
                at("size_only"),
                f"size_only conflicts with ignore_times (set at {at('ignore_times')})",
            )
        )
    if (
        options.min_size is not None
        and options.max_size is not None
        and options.min_size > options.max_size
    ):
        found.append(
            Problem(at("min_size"), f"min_size is larger than max_size ({at('max_size')})")
        )
    return found


def _rank(options: RsyncOptions, key: str) -> int:
    """Precedence of the layer ``key`` came from: 0 is the command line (highest)."""
    return LAYERS.index(options.source(key).split(" ", 1)[0])


@dataclass
class CheckedLayers:
    """The option layers the config check built, kept so that resolving a target's
    options later does not check (and parse) the same values a second time."""

    defaults: Layer | None = None
    #: target name -> its layers, highest first, with an empty defaults layer in place
    targets: dict[str, list[Layer]] = field(default_factory=dict)

    def layers_of(self, name: str) -> list[Layer] | None:
        if self.defaults is None or name not in self.targets:
            return None
        cached = self.targets[name]
        return [self.defaults if layer.name == LAYER_DEFAULTS else layer for layer in cached]


def resolve(
    target_name: str,
    settings: Mapping[str, Any],
    defaults: Mapping[str, Any],
    base_dir: Path | None,
    cli: Layer | None = None,
    checked: list[Layer] | None = None,
) -> RsyncOptions:
    """The merged options of one target; ConfigError (every problem kept) if any is bad.

    ``checked``: the target's layers as the config check built them (no problems), used
    instead of checking the config's values again.
    """
    if checked is not None:
        layers, problems = list(checked), []
    else:
        layers, problems = target_layers(target_name, settings, defaults, base_dir)
    if cli is not None:
        layers.insert(0, cli)
    options = merge(layers)
    if not problems:
        problems = conflicts(options)
    if problems:
        lines = [f"target {target_name!r}: {problem}" for problem in problems]
        raise ConfigError(lines[0], lines)
    return options


def cli_layer(values: Mapping[str, Any], base_dir: Path) -> Layer:
    """The command line's layer from ``{key: value}`` (None = not given on the command line).

    A command-line ``--rsync-verbose`` also turns quiet off (and ``--rsync-quiet`` turns
    verbose off) unless the other is given too: the run asks for one, whatever a preset
    or the config said.
    """
    given = {key: value for key, value in values.items() if value is not None}
    for one, other in (("verbose", "quiet"), ("quiet", "verbose")):
        if given.get(one) is True and other not in given:
            given[other] = False
    problems: list[Problem] = []
    layer = make_layer(LAYER_CLI, given, "", base_dir, problems)
    where = {}
    for key, value in layer.values.items():
        flag = SPECS[key].cli or key
        if value is False:
            flag = "--no-" + flag[2:]
        if key not in values or values[key] is None:
            flag = f"implied by {SPECS['quiet' if key == 'verbose' else 'verbose'].cli}"
        where[key] = flag
    if problems:
        first = problems[0]
        flag = SPECS[first.where].cli if first.where in SPECS else first.where
        raise ConfigError(f"{flag or first.where}: {first.message}")
    return Layer(LAYER_CLI, layer.values, where)


# -- flags ------------------------------------------------------------------------------


def build_flags(options: RsyncOptions) -> list[str]:
    """The rsync flags for ``options``: ``-a``, the booleans, the values, then filters
    (:func:`option_flags`, then :func:`filter_flags`)."""
    return option_flags(options) + filter_flags(options)


def option_flags(options: RsyncOptions) -> list[str]:
    """The rsync flags for ``options`` but its filters: ``-a``, the booleans, the values.

    ``partial`` becomes ``--partial-dir=DIR`` alone (never bare ``--partial``, which
    would leave a cut-off file under its final name); off (the default), rsync gets
    neither flag and deletes a cut-off file, so a failed transfer leaves none behind.
    """
    flags = list(BASE_FLAGS)
    for spec in OPTIONS:
        if spec.kind == "bool" and spec.rsync and getattr(options, spec.key):
            if spec.key == "partial" and options.partial_dir is not None:
                continue  # --partial-dir below implies --partial
            flags.append(spec.rsync)
    for spec in OPTIONS:
        if spec.kind in ("int", "str", "size", "positive"):
            value = getattr(options, spec.key)
            if spec.key == "partial_dir" and not options.partial:
                continue  # partial = false: no partial files kept anywhere
            if value is not None:
                flags.append(f"{spec.rsync}={value}")
    return flags


def filter_flags(options: RsyncOptions) -> list[str]:
    """The target's include/exclude rules as rsync flags. Includes come before excludes
    because rsync uses the first rule that matches."""
    flags = [f"--include={pattern}" for pattern in options.include]
    if options.include_from:
        flags.append(f"--include-from={options.include_from}")
    flags += [f"--exclude={pattern}" for pattern in options.exclude]
    if options.exclude_from:
        flags.append(f"--exclude-from={options.exclude_from}")
    return flags


def describe(options: RsyncOptions) -> list[str]:
    """One line per option: ``key = value  (layer: where)``, for people."""
    return describe_values(
        options.values(), {key: options.source(key) for key in SPECS}, options.where
    )


def describe_values(
    values: Mapping[str, Any], sources: Mapping[str, str], where: Mapping[str, str]
) -> list[str]:
    """:func:`describe` from the ``options``, ``sources`` and ``where`` of a ``dry_run``
    event, so the command line can show them without the job itself."""
    width = max(len(spec.key) for spec in OPTIONS)
    lines = []
    for key, value in values.items():
        shown = _toml_value(value)
        source = sources.get(key, LAYER_BUILTIN)
        written = where.get(key)
        shown_where = written and written != source and not source.startswith(LAYER_PRESET)
        origin = f"{source}: {written}" if shown_where else source
        lines.append(f"{key:<{width}} = {shown:<12}  ({origin})")
    return lines


def _toml_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return str(value)
