"""The rsync command line as a value (pdbsync.rsync.argv): what a target, a split part,
a plan and a mirror fallback run, word for word, and that the value still runs a real
rsync against the local daemon."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from local_mirror import LocalMirror

from pdbsync.config.load import load_config
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.run.driver import RunSettings, run_sync
from pdbsync.run.jobs import Job, plan_jobs
from pdbsync.split import parts as split

URL = "rsync://127.0.0.1:873/ftp_data/structures/divided/mmCIF/"
OPTIONS = (
    'options = { delete = true, timeout = 30, include = ["keep.tmp"], '
    'exclude = ["*.tmp", "/skipme"] }'
)
#: What the options above become, in rsync's order: -a, the booleans, the values, then
#: the filters (includes first: rsync takes the first rule that matches).
TARGET_FLAGS = [
    "-a",
    "--delete",
    "--timeout=30",
    "--include=keep.tmp",
    "--exclude=*.tmp",
    "--exclude=/skipme",
]


def _job(tmp_path: Path, plan: bool = False, url: str = URL, options: str = OPTIONS) -> Job:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\npdb_dir = "{tmp_path / "pdb"}"\n\n'
        f'[sync.custom.mmcif]\nurl = "{url}"\ndest = "mmcif"\n{options}\n'
    )
    (job,) = plan_jobs(load_config(config), ["mmcif"], tmp_path / "pdb", plan=plan)
    return job


def test_a_plain_target_runs_flags_filters_progress_stats_source_dest(tmp_path):
    job = _job(tmp_path)
    assert list(job.argv) == [
        "rsync",
        *TARGET_FLAGS,
        "--info=progress2",
        "--stats",
        "--",
        URL,
        f"{tmp_path / 'pdb' / 'mmcif'}/",
    ]
    # the parts each layer decided, each in its own field
    assert job.command.flags == ("-a", "--delete", "--timeout=30")
    assert job.command.filters == ("--include=keep.tmp", "--exclude=*.tmp", "--exclude=/skipme")
    assert job.command.part_filters == () and job.command.source == URL


def test_plan_mode_asks_for_a_dry_run_of_itemized_changes_instead_of_progress(tmp_path):
    job = _job(tmp_path, plan=True)
    assert list(job.argv) == [
        "rsync",
        *TARGET_FLAGS,
        "--dry-run",
        "--itemize-changes",
        "--stats",
        "--",
        URL,
        f"{tmp_path / 'pdb' / 'mmcif'}/",
    ]


def test_a_split_part_puts_its_rules_first_and_keeps_the_targets_own(tmp_path):
    job = _job(tmp_path)
    first, catch_all = split.part_jobs(job, [["bb", "cc"], ["aa"]], [2, 1])
    # the catch-all hides (H) and protects (P) the other parts' names, nothing else
    assert list(catch_all.argv) == [
        "rsync",
        "--filter=H /bb",
        "--filter=P /bb",
        "--filter=H /cc",
        "--filter=P /cc",
        *TARGET_FLAGS,
        "--info=progress2",
        "--stats",
        "--",
        URL,
        f"{tmp_path / 'pdb' / 'mmcif'}/",
    ]
    rules = first.command.part_filters
    assert rules and all(rule.startswith(("--filter=H /", "--filter=P /")) for rule in rules)
    assert list(first.argv) == ["rsync", *rules, *list(job.argv)[1:]]
    # the target's value is untouched: a part is a new value, not an edited list
    assert job.command.part_filters == ()


def test_a_split_parts_plan_keeps_the_plan_flags(tmp_path):
    (part, _catch_all) = split.part_jobs(_job(tmp_path, plan=True), [["bb"], ["aa"]], [1, 1])
    argv = list(part.argv)
    assert argv[-6:] == ["--dry-run", "--itemize-changes", "--stats", "--", URL, argv[-1]]
    assert "--info=progress2" not in argv


def test_a_fallback_mirror_changes_the_source_and_nothing_else():
    command = RsyncArgv("rsync", "rsync://a/m/x/", "/d", ("-a", "--delete"), ("--exclude=y",))
    job = Job(
        "t",
        "rsync://a/m/x/",
        Path("/d"),
        command,
        mirror="a",
        mirror_reason="auto: ...",
        fallbacks=(("b", "rsync://b/m/x/"),),
    )
    refused = ["rsync: [Receiver] failed to connect to a (1.2.3.4): Connection refused (111)"]
    switched = job.next_mirror(10, refused)
    assert switched is not None
    assert switched.command == dataclasses.replace(command, source="rsync://b/m/x/")
    assert list(switched.argv) == [
        "rsync",
        "-a",
        "--delete",
        "--exclude=y",
        "--info=progress2",
        "--stats",
        "--",
        "rsync://b/m/x/",
        "/d/",
    ]


def test_the_listing_of_a_split_target_keeps_its_filters_and_timeouts(tmp_path):
    job = _job(tmp_path)
    assert split.listing_argv(job) == [
        "rsync",
        "--list-only",
        "-r",
        "--no-motd",
        "-8",
        "--timeout=30",
        "--include=keep.tmp",
        "--exclude=*.tmp",
        "--exclude=/skipme",
        "--",
        URL,
    ]


def test_the_value_is_frozen():
    command = RsyncArgv("rsync", "h::m/", "/d")
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.source = "elsewhere"  # type: ignore[misc]


@pytest.mark.daemon
def test_split_parts_built_as_values_still_transfer_from_the_daemon(
    mirror: LocalMirror, archive: Path, tmp_path: Path
):
    """Both parts of a split target, run by real rsyncs: each copies the names it owns,
    and the target's own exclude still holds inside the part that owns the name."""
    source = archive / "structures/divided/mmCIF"
    names = sorted(path.name for path in source.iterdir())
    excluded, owned = names[1], names[:3]
    url = mirror.url("ftp_data", "structures/divided/mmCIF/")
    job = _job(tmp_path, url=url, options=f'options = {{ exclude = ["/{excluded}"] }}')
    parts = split.part_jobs(job, [owned, names[3:]], [3, len(names) - 3])
    # each part run on its own, as a whole target, to see what it alone copies
    parts = [dataclasses.replace(part, part=0, parts=0) for part in parts]
    dest = tmp_path / "pdb" / "mmcif"

    first = run_sync([parts[0]], RunSettings())
    assert int(first.exit_code) == 0
    assert sorted(path.name for path in dest.iterdir()) == [n for n in owned if n != excluded]

    rest = run_sync([parts[1]], RunSettings())
    assert int(rest.exit_code) == 0
    assert sorted(path.name for path in dest.iterdir()) == [n for n in names if n != excluded]
