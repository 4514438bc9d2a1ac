"""Where a run may write: the one rule for every path pdb-sync hands rsync or writes itself.

Each target owns its dest tree. rsync treats it as a copy of the source (with ``delete``
it removes whatever else is there), moves what it finds in its partial dir into place,
and overwrites what is in its backup dir. So a path one target's rsync writes or
deletes in, or a file pdb-sync writes itself, lying inside another target's tree (or
holding one) destroys that target's files. Every such path is judged here, by where it
*resolves* (symlinks and ``..`` followed, dangling links included: ``mkdir -p`` would
create their target), against the resolved dest of every target of the config, not only
the selected ones: a run of ``a`` must not consume the files of an unselected ``b``.

- a target's partial dir, backup dir and lock file: neither inside nor equal to another
  target's dest, and no target's dest (its own included) inside or equal to them; inside
  the target's own dest is where relative ones belong;
- a partial or backup dir: not a target's lock file nor inside one (rsync would make a
  directory there, and no run of that target could lock it again), and apart from every
  other partial or backup dir, the target's own included (:func:`dir_problems`): rsync
  would hand one's partial files to the other, overwrite the other's backups, or take
  backups for partial files;
- a file pdb-sync writes (``--summary``, ``--events``, ``--junit``, ``--metrics``,
  ``--log-file``; the library's ``summary``): neither inside any target's dest nor
  holding one, not a target's lock file, not the config file, not one of pdb-sync's
  state files, and not the same file as another of them (a FIFO or a device such as
  ``/dev/null`` is written in place and may be shared).

Callers: :func:`pdbsync.run.jobs.plan_jobs` (every sync, plan, split part and shard), ``config
validate`` (:func:`pdbsync.config.load.check_file`), :func:`refuse_outputs`, through
``pdbsync.sync``/``plan``/``prepare(outputs=...)`` (the library's ``summary``; the
command line's output flags, checked with the whole run before ``before_run`` opens
``--events`` and ``--log-file``), and :func:`refuse_command_outputs` (``summary merge
-o`` and the ``--log-file`` of every other command).
The dest-against-dest rule is :func:`pdbsync.config.load.resolve_dests`. docs/safety.md lists
the rules for people.
"""

from __future__ import annotations

import os
import stat
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pdbsync import paths
from pdbsync.errors import ConfigError, UsageError
from pdbsync.paths import LOCK_SUFFIX, lock_path

if TYPE_CHECKING:
    from pdbsync.config.load import Config
    from pdbsync.config.options import RsyncOptions

#: Said with every refusal of a path in or around another target's tree.
OWN_TREE_HELP = "each target owns its dest tree (rsync moves, overwrites and deletes files there)"
#: Said when an output would replace a lock file (a new inode is no lock at all).
LOCK_HELP = "replacing it would let two runs write into that target's tree at once"
#: Said when a partial or backup dir would be made at or under a lock file.
LOCK_DIR_HELP = "rsync would make a directory there, and that target could never be locked again"
#: Said when two partial or backup dirs meet.
DIRS_HELP = (
    "rsync moves what it finds in a partial dir into place and overwrites what is in a "
    "backup dir: each needs a place of its own"
)
#: What :attr:`Place.key` says of a target's lock file, and of its dirs.
LOCK_KEY = "lock"
DIR_KEYS = ("partial_dir", "backup_dir")

#: Every file pdb-sync keeps in its state directory (pdbsync.store.history): the history, the
#: targets index and its lock, split listings, the mirror choice and the caches.
STATE_FILES = (
    "history.jsonl",
    "targets.json",
    "lock",
    "listings.json",
    "mirrors.json",
    "rsync-version",
    "valid-configs",
)


class Place(NamedTuple):
    """One path a run writes in or to, and how a message names it (a tuple: a config
    may make tens of thousands of them)."""

    label: str  # the key or flag: 'sync.custom.a.options.partial_dir', '--summary'
    given: str  # as written
    real: str  # where it resolves
    #: the target whose own dest may hold it (None: a file pdb-sync writes for the run)
    owner: str | None = None
    #: what it is to its target: 'partial_dir', 'backup_dir' or LOCK_KEY (None: an output)
    key: str | None = None

    def shown(self) -> str:
        prefix = f"target {self.owner!r}: " if self.owner is not None else ""
        resolves = "" if self.real == self.given else f" (resolves to {self.real!r})"
        return f"{prefix}{self.label} {self.given!r}{resolves}"


class Dests:
    """Every configured target's resolved dest, asked which one holds a path or lies in
    it: a walk up the path's parents, and one bisection of the sorted dests, so tens of
    thousands of targets cost no pairwise comparison."""

    def __init__(self, resolved: Mapping[str, str], written: Mapping[str, str]) -> None:
        self.written = written
        self._real = resolved
        self._at: dict[str, str] = {}
        for name, real in resolved.items():
            self._at.setdefault(real, name)
        self._sorted = sorted(self._at)

    def holding(self, path: str) -> str | None:
        """The target whose dest is ``path`` or its nearest ancestor, if any."""
        probe = path  # resolved, so absolute and normalised: cut at each '/'
        while probe:
            name = self._at.get(probe)
            if name is not None:
                return name
            probe = probe[: probe.rfind("/")]
        return self._at.get("/")

    def lock_at(self, path: str) -> tuple[str, str] | None:
        """The target whose lock file is ``path`` or one of its parents, and that lock
        file's path, if any."""
        if LOCK_SUFFIX not in path:
            return None  # the usual path: no walk
        probe = path
        while probe:
            name = self.lock_owner(probe)
            if name is not None:
                return name, probe
            probe = probe[: probe.rfind("/")]
        return None

    def below(self, path: str) -> str | None:
        """A target whose dest lies strictly below ``path``, if any."""
        prefix = path if path.endswith("/") else path + "/"
        index = bisect_left(self._sorted, prefix)
        if index < len(self._sorted) and self._sorted[index].startswith(prefix):
            return self._at[self._sorted[index]]
        return None

    def dest(self, name: str, owner: str | None = None) -> str:
        """Target ``name``'s dest for messages ("its own" when it is ``owner``'s)."""
        key = f"sync.custom.{name}.dest {self.written[name]!r}"
        return f"its own dest ({key})" if name == owner else f"the dest of target {name!r} ({key})"

    def real(self, name: str) -> str:
        return self._real[name]

    def lock_owner(self, path: str) -> str | None:
        """The target whose lock file (pdbsync.paths.lock_path) ``path`` is, if any."""
        if not path.endswith(LOCK_SUFFIX):
            return None
        name = self._at.get(path[: -len(LOCK_SUFFIX)])
        if name is not None and str(lock_path(Path(self.real(name)))) == path:
            return name
        return None


def conflict(place: Place, dests: Dests) -> str | None:
    """The problem line if ``place`` lies in or around a target's tree, else None.

    The rule of the module docstring: inside or equal to another target's dest, or
    holding (or being) any target's dest, its owner's included; and a partial or backup
    dir at or under a target's lock file. (One holding a lock file holds that target's
    dest too: the lock lies beside it.)
    """
    holder = dests.holding(place.real)
    if holder is not None:
        own = holder == place.owner
        equal = dests.real(holder) == place.real
        if not own or equal:
            relation = "is" if equal else "is inside"
            return (
                f"{place.shown()} {relation} {dests.dest(holder, place.owner)}; refused: "
                f"{OWN_TREE_HELP}"
            )
    inner = dests.below(place.real)
    if inner is not None:
        return f"{place.shown()} holds {dests.dest(inner, place.owner)}; refused: {OWN_TREE_HELP}"
    if place.key in DIR_KEYS:
        found = dests.lock_at(place.real)
        if found is not None:
            name, lock = found
            relation = "is" if lock == place.real else "is inside"
            own = name == place.owner
            whose = "its own lock file" if own else f"the lock file of target {name!r}"
            return f"{place.shown()} {relation} {whose} ({lock!r}); refused: {LOCK_DIR_HELP}"
    return None


# -- a target's own places ---------------------------------------------------------------


def target_places(name: str, resolved_dest: str, options: RsyncOptions) -> list[Place]:
    """The paths target ``name``'s rsync writes in besides its dest (the partial dir and
    backup dir it is given, each relative one under the dest) and its lock file.
    """
    found = []
    for key in ("partial_dir", "backup_dir"):
        value = getattr(options, key)
        if value is None or (key == "partial_dir" and not options.partial):
            continue  # not passed to rsync (see options.build_flags)
        label = options.where.get(key, key)
        if os.path.isabs(value):
            found.append(Place(label, value, str(paths.real(value)), name, key))
        else:
            found.append(Place(label, value, _under(resolved_dest, value), name, key))
    lock = str(lock_path(Path(resolved_dest)))
    found.append(Place("lock file", lock, lock, name, LOCK_KEY))
    return found


def _under(resolved_dest: str, relative: str) -> str:
    """Where ``relative`` resolves under a dest that is already resolved: the joined
    path unless something in it is a symlink (one lstat for the usual one component)."""
    components = paths.parts(relative)
    joined = "/".join((resolved_dest.rstrip("/"), *components))
    if len(components) == 1:
        try:
            if not stat.S_ISLNK(os.lstat(joined).st_mode):
                return joined
        except OSError:
            return joined  # nothing there yet (nor a link: lstat sees dangling ones)
    return str(paths.real(joined))


def target_problems(places: Iterable[Place], dests: Dests) -> list[str]:
    """Every place of ``places`` that breaks the rule, one line each."""
    return [line for place in places if (line := conflict(place, dests)) is not None]


def escapes(place: Place, resolved_dest: str) -> bool:
    """Whether ``place``, a partial or backup dir, lies outside its own dest (absolute,
    or through a link): only such a dir can meet another target's (every other lies in
    its own dest, apart from every other dest), so only then are the others needed."""
    return place.key != LOCK_KEY and paths.below(place.real, resolved_dest) is None


def dir_problems(checked: Iterable[Place], every: Iterable[Place]) -> list[str]:
    """Every partial or backup dir of ``checked`` (the targets a run runs) that is, holds
    or lies inside another partial or backup dir of ``every`` (every target's, the
    checked ones' included): another target's, or its own target's other one. One line
    for each pair, naming both targets and keys."""
    dirs = [place for place in every if place.key in DIR_KEYS]
    at: dict[str, list[Place]] = {}
    for place in dirs:
        at.setdefault(place.real, []).append(place)
    ordered = sorted(at)
    found, told = [], set()
    for place in checked:
        if place.key not in DIR_KEYS:
            continue
        met = _meeting(place, at, ordered)
        if met is None:
            continue
        relation, other = met
        pair = frozenset(((place.owner, place.key), (other.owner, other.key)))
        if pair in told:
            continue
        told.add(pair)
        found.append(_meets(place, relation, other))
    return found


def own_dir_problems(places: Iterable[Place]) -> list[str]:
    """:func:`dir_problems` when no dir of ``places`` leaves its own dest: then only a
    target's own partial and backup dir can meet, compared directly (no index)."""
    first: dict[str | None, Place] = {}
    found = []
    for place in places:
        if place.key not in DIR_KEYS:
            continue
        earlier = first.setdefault(place.owner, place)  # its partial dir, if it has one
        if earlier is place:
            continue
        if earlier.real == place.real:
            relation = "is"
        elif earlier.real.startswith(place.real.rstrip("/") + "/"):
            relation = "is inside"
        elif place.real.startswith(earlier.real.rstrip("/") + "/"):
            relation = "holds"
        else:
            continue
        found.append(_meets(earlier, relation, place))
    return found


def _meets(place: Place, relation: str, other: Place) -> str:
    kind = str(other.key).replace("_", " ")
    own = other.owner == place.owner
    whose = f"its own {kind}" if own else f"the {kind} of target {other.owner!r}"
    return (
        f"{place.shown()} {relation} {whose} ({other.label} {other.given!r}); refused: {DIRS_HELP}"
    )


def _meeting(
    place: Place, at: Mapping[str, list[Place]], ordered: list[str]
) -> tuple[str, Place] | None:
    """Another dir of ``at`` that ``place`` is, lies in or holds, and how."""

    def other(candidates: Iterable[Place]) -> Place | None:
        return next((c for c in candidates if (c.owner, c.key) != (place.owner, place.key)), None)

    probe = place.real
    while probe:
        found = other(at.get(probe, ()))
        if found is not None:
            return ("is" if probe == place.real else "is inside"), found
        probe = probe[: probe.rfind("/")]
    prefix = place.real.rstrip("/") + "/"
    index = bisect_left(ordered, prefix)
    while index < len(ordered) and ordered[index].startswith(prefix):
        found = other(at[ordered[index]])
        if found is not None:
            return "holds", found
        index += 1
    return None


# -- files pdb-sync writes for the run -----------------------------------------------------


def output_problems(
    outputs: Mapping[str, os.PathLike[str] | str],
    *,
    root: Path | None,
    dests: Callable[[], Dests],
    config_path: Path | None,
    state_dir: Path,
) -> list[str]:
    """Every output (label → path as given) that breaks the rule, one line each.

    ``root``: pdb_dir resolved (None: no targets are known, and only the rules that need
    none apply). ``dests`` is called only when an output resolves below the root or
    above it (every dest lies below the root), so the usual run, whose outputs lie
    elsewhere, does not resolve every dest a second time. ``config_path``: the config
    file (None: there is none).
    """
    found = []
    resolved = {label: str(paths.real(Path(path).expanduser())) for label, path in outputs.items()}
    config_real = None if config_path is None else str(paths.real(config_path))
    state_real = paths.real(state_dir)
    state_files = {str(state_real / name): name for name in STATE_FILES}
    index: Dests | None = None
    seen: dict[str, str] = {}
    for label, real in resolved.items():
        place = Place(label, str(outputs[label]), real)
        if root is not None and (
            paths.below(real, root) is not None or paths.below(root, real) is not None
        ):
            index = index or dests()
            line = conflict(place, index)
            if line is None and (owner := index.lock_owner(real)) is not None:
                line = f"{place.shown()} is the lock file of target {owner!r}; refused: {LOCK_HELP}"
            if line is not None:
                found.append(line)
                continue
        if real == config_real:
            found.append(f"{place.shown()} is the config file; refused: it would be overwritten")
        elif real in state_files:
            found.append(
                f"{place.shown()} is pdb-sync's state file {state_files[real]!r} (in "
                f"{str(state_dir)!r}); refused: it would be overwritten"
            )
        elif real in seen and not _written_in_place(real):
            other = seen[real]
            found.append(
                f"{place.shown()} is the same file as {other} {str(outputs[other])!r}; "
                "refused: one would overwrite the other; give each its own path"
            )
        seen.setdefault(real, label)
    return found


def _written_in_place(real: str) -> bool:
    """A FIFO or character device (``/dev/null``): written in place, never replaced, so
    two outputs may share it."""
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def refuse_outputs(
    config: Config,
    pdb_dir: Path,
    outputs: Mapping[str, os.PathLike[str] | str | None],
    state_dir: Path,
) -> None:
    """Raise UsageError (the first problem) if an output breaks the rule; before anything
    is written. ``config``: the loaded :class:`pdbsync.config.load.Config`; ``pdb_dir``: the
    run's mirror root. Outputs whose path is None are not written and not checked. A
    dest problem found on the way is raised as ConfigError, as planning the jobs would.
    """
    from pdbsync.config.load import resolve_dests

    given = {label: path for label, path in outputs.items() if path is not None}
    if not given:
        return
    written = {t.name: t.dest for t in config.targets.values()}
    config_path = config.path

    def index() -> Dests:
        checked = resolve_dests(pdb_dir, written)
        if checked.problems:
            problems = [f"{config_path}: {problem}" for problem in checked.problems]
            raise ConfigError(problems[0], problems)
        return Dests(checked.dests, written)

    found = output_problems(
        given,
        root=paths.real(pdb_dir),
        dests=index,
        config_path=config_path,
        state_dir=state_dir,
    )
    if found:
        raise UsageError(found[0])


def refuse_command_outputs(
    outputs: Mapping[str, os.PathLike[str] | str | None],
    *,
    config: str | None,
    pdb_dir: str | None,
    environ: Mapping[str, str],
) -> None:
    """:func:`refuse_outputs` for the files a command writes outside a run (``summary
    merge -o``, the ``--log-file`` of every command but a running ``sync``): the config
    is found as the command line finds it (``config``: ``--config``) and, when it can be
    loaded, every rule applies; without one (none there, or it does not load: ``config
    validate`` reports that itself) only those that need no targets do (not the config
    file, not a state file, not one another).
    """
    from pdbsync.config import load as config_module
    from pdbsync.store import history as state

    given = {label: path for label, path in outputs.items() if path is not None}
    if not given:
        return
    state_dir = state.state_dir(environ)
    path = config_module.find_config(config, environ)
    try:
        loaded = config_module.load_config(path)
        root = config_module.resolve_pdb_dir(loaded, pdb_dir, environ)
        refuse_outputs(loaded, root, given, state_dir)
        return
    except ConfigError:
        pass  # no config, or a bad one: the command says so itself
    found = output_problems(
        given,
        root=None,
        dests=lambda: Dests({}, {}),
        config_path=path if path.is_file() else None,
        state_dir=state_dir,
    )
    if found:
        raise UsageError(found[0])
