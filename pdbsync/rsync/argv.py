"""The command line of one rsync transfer, as a value.

An :class:`RsyncArgv` holds what each part of pdb-sync decides about a transfer in its
own field (the target's flags and filter rules, a split part's rules, plan mode, the
source and the destination), and :meth:`RsyncArgv.render` is the one place that puts
them in order. Changing the source (a mirror fallback) or adding a part's rules is a
:func:`dataclasses.replace`, never an insertion at a list index.

Also what an argv says to the parsers of rsync's output: the ``--human-readable`` level
(the unit base of the sizes it prints) and whether it deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: What rsync prints for progress events (not in a plan: its lines are itemized instead).
PROGRESS_FLAG = "--info=progress2"
#: A plan: the same transfer, changing nothing, each line saying what would happen.
PLAN_FLAGS = ("--dry-run", "--itemize-changes")


@dataclass(frozen=True)
class RsyncArgv:
    """``rsync [PART RULES] FLAGS FILTERS PLAN|PROGRESS --stats -- SOURCE DEST/``.

    ``flags``: the target's options but its filters (pdbsync.config.options.option_flags);
    ``filters``: its ``--include``/``--exclude`` rules (``filter_flags``), includes first
    (rsync takes the first rule that matches); ``part_filters``: a split part's
    hide/protect rules (pdbsync.split.parts), put before everything so they narrow the
    target's own rules and no rule of the target can re-include what the part does not own.

    The source is used as written: with a trailing slash rsync copies the contents of
    the remote directory into DEST, without one it creates DEST/<basename>. Partial
    files are the flags' business (``option_flags`` passes ``--partial-dir`` only while
    ``partial`` is on), so ``--no-partial`` really means none.
    """

    program: str
    source: str
    dest: str
    flags: tuple[str, ...] = ("-a",)
    filters: tuple[str, ...] = ()
    part_filters: tuple[str, ...] = ()
    #: ``--dry-run --itemize-changes`` instead of progress redraws (pdbsync.run.plan_mode)
    plan: bool = False
    #: more sources after ``source`` (a weekly update's ``-R`` file arguments,
    #: pdbsync.weekly.transfer); rendered in order before the destination
    sources: tuple[str, ...] = ()

    def render(self) -> list[str]:
        """The exact argv to exec."""
        mode = PLAN_FLAGS if self.plan else (PROGRESS_FLAG,)
        return [
            self.program,
            *self.part_filters,
            *self.flags,
            *self.filters,
            *mode,
            "--stats",
            "--",
            self.source,
            *self.sources,
            self.dest.rstrip("/") + "/",
        ]


#: Short options of rsync that take an argument: in ``-e ssh`` or ``-essh`` the rest of
#: the cluster (or the next word) is that argument, not more options.
_SHORT_WITH_ARG = set("eBfTM")


def human_readable_level(argv: Sequence[str]) -> int:
    """The ``--human-readable`` level an rsync argv asks for (rsync 3.x: default 1).

    Level 0 prints bare digits, 1 adds thousands separators, 2 (``-h``) prints sizes in
    units of 1000 (``114.59K``) and 3 (``-hh``) in units of 1024; counts of files keep
    their separators at every level. Parsers need the level because ``1.23K`` alone does
    not say which base it was printed in.
    """
    level = 1
    words = iter(argv[1:])
    for word in words:
        if word == "--":
            break
        if word == "--human-readable":
            level += 1
        elif word in ("--no-human-readable", "--no-h"):
            level = 0
        elif word.startswith("-") and not word.startswith("--") and len(word) > 1:
            for position, letter in enumerate(word[1:], start=1):
                if letter == "h":
                    level += 1
                elif letter in _SHORT_WITH_ARG:
                    if position == len(word) - 1:
                        next(words, None)  # the option's argument is the next word
                    break
    return level


def size_base(argv: Sequence[str]) -> int:
    """The unit base of the sizes rsync prints with this argv: 1024 for ``-hh``, else 1000."""
    return 1024 if human_readable_level(argv) >= 3 else 1000


def deletes(argv: Sequence[str]) -> bool:
    """Whether this argv makes rsync delete files on the receiving side."""
    for word in argv[1:]:
        if word == "--":
            break
        if word == "--del" or word.startswith("--delete"):
            return True
    return False
