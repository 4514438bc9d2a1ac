"""Files pdb-sync writes: symlinks followed, FIFOs and devices written in place, bad
paths refused before the run, and the run's exit code the same in the event and the
process whichever way the summary write goes."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path

import orjson
import pytest
from conftest import run_cli

from pdbsync import outputs
from pdbsync.errors import UsageError
from pdbsync.outputs import OutputWriteError, check_output_path, open_for_append, write_file

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")


class FifoReader(threading.Thread):
    """Reads a FIFO to its end in the background; ``data`` holds what arrived."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.data = b""

    def run(self) -> None:
        with open(self.path, "rb") as fifo:  # blocks until the writer opens it
            self.data = fifo.read()

    def result(self) -> bytes:
        self.join(timeout=30)
        assert not self.is_alive(), "the writer never closed the FIFO"
        return self.data


def _summary_args(config: Path, summary: Path | str, *extra: str) -> tuple[str, ...]:
    return ("--config", str(config), "sync", "emdb", "--summary", str(summary), *extra)


# -- the writer, file kind by file kind ----------------------------------------------------


def test_new_file_is_created_with_its_parents_and_no_temp_file_left(tmp_path):
    path = tmp_path / "a" / "b" / "out.json"
    write_file(path, b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert stat.S_IMODE(path.stat().st_mode) == outputs.NEW_FILE_MODE
    assert os.listdir(path.parent) == ["out.json"]


@needs_root
def test_replacing_a_file_keeps_its_owner_and_mode(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    os.chown(path, 4242, 4343)
    path.chmod(0o600)
    write_file(path, b"new")
    info = path.stat()
    assert path.read_text() == "new"
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o600)


def test_symlink_stays_a_link_and_its_target_is_written(tmp_path):
    target = tmp_path / "real" / "summary.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_file(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real"]
    assert os.listdir(target.parent) == ["summary.json"]


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "later.json")
    write_file(link, b"x")
    assert link.is_symlink() and (tmp_path / "later.json").read_bytes() == b"x"


def test_fifo_is_written_in_place_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    payload = b"x" * 300_000  # more than a pipe holds: the writer must wait for the reader
    write_file(fifo, payload)
    assert reader.result() == payload
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_fifo_without_a_reader_fails_within_the_bound(tmp_path, monkeypatch):
    """It gives up after its own wait (here 0.3 s, not the default 5 s), and says so."""
    monkeypatch.setattr(outputs, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    with pytest.raises(
        OutputWriteError,
        match=r"^--summary x: cannot write: no process read the FIFO within 0\.3 s",
    ):
        write_file(fifo, b"{}", label="--summary x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_fifo_whose_reader_stops_reading_fails_within_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "stuck.fifo"
    os.mkfifo(fifo)
    idle_reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        with pytest.raises(OutputWriteError, match="the FIFO's reader stopped reading"):
            write_file(fifo, b"x" * 1_000_000)
    finally:
        os.close(idle_reader)


def test_dev_full_is_one_line_and_stays_a_device():
    with pytest.raises(OutputWriteError) as caught:
        write_file(Path("/dev/full"), b"{}\n", label="--summary /dev/full")
    assert str(caught.value) == "--summary /dev/full: cannot write: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_dev_null_is_written_and_stays_a_device():
    write_file(Path("/dev/null"), b"{}\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_directory_and_socket_are_refused(tmp_path):
    with pytest.raises(OutputWriteError, match="cannot write: is a directory"):
        write_file(tmp_path, b"{}")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        with pytest.raises(OutputWriteError, match="cannot write: is a socket"):
            write_file(tmp_path / "sock", b"{}")
        assert stat.S_ISSOCK((tmp_path / "sock").lstat().st_mode)


# -- the check before a run ----------------------------------------------------------------


def test_check_accepts_new_files_links_fifos_and_devices(tmp_path):
    check_output_path(tmp_path / "new" / "deeper" / "s.json", "--summary")
    (tmp_path / "link").symlink_to(tmp_path / "s.json")
    check_output_path(tmp_path / "link", "--summary")
    os.mkfifo(tmp_path / "fifo")
    check_output_path(tmp_path / "fifo", "--summary")
    check_output_path(Path("/dev/null"), "--summary")


def test_check_refuses_a_directory_even_through_a_link(tmp_path):
    (tmp_path / "to-dir").symlink_to(tmp_path)
    for path in (tmp_path, tmp_path / "to-dir"):
        with pytest.raises(UsageError) as caught:
            check_output_path(path, "--summary")
        assert caught.value.message == (
            f"--summary {path}: is a directory; give the path of a file"
        )


def test_check_refuses_a_parent_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError) as caught:
        check_output_path(blocker / "sub" / "s.json", "--summary")
    assert caught.value.message == (
        f"--summary {blocker / 'sub' / 's.json'}: {blocker} is not a directory"
    )


def test_check_refuses_a_block_device(tmp_path):
    device = tmp_path / "blk"
    try:
        os.mknod(device, stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except OSError as exc:
        pytest.skip(f"cannot make a block device here: {exc.strerror}")
    with pytest.raises(UsageError, match="is a block device"):
        check_output_path(device, "--summary")
    with pytest.raises(OutputWriteError, match="is a block device"):
        write_file(device, b"{}")
    assert stat.S_ISBLK(device.lstat().st_mode)


# -- the log file --------------------------------------------------------------------------


def test_log_stream_appends_through_a_symlink(tmp_path):
    target = tmp_path / "logs" / "diag.jsonl"
    target.parent.mkdir()
    target.write_bytes(b"earlier\n")
    link = tmp_path / "diag.jsonl"
    link.symlink_to(target)
    with open_for_append(link, "--log-file") as stream:
        stream.write(b"later\n")
    assert link.is_symlink() and target.read_bytes() == b"earlier\nlater\n"


def test_log_stream_refuses_a_directory(tmp_path):
    with pytest.raises(UsageError) as caught:
        open_for_append(tmp_path, "--log-file")
    assert caught.value.message == f"--log-file {tmp_path}: is a directory; give the path of a file"


# -- through the command line, against the local daemon ------------------------------------


def test_symlinked_summary_keeps_the_link(four_targets, tmp_path):
    target = tmp_path / "kept" / "summary.json"
    target.parent.mkdir()
    link = tmp_path / "summary.json"
    link.symlink_to(target)
    result = run_cli(*_summary_args(four_targets, link))
    assert result.code == 0, result.stderr
    assert link.is_symlink()
    assert json.loads(target.read_text())["results"][0]["name"] == "emdb"


def test_fifo_summary_reaches_its_reader(four_targets, tmp_path):
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    result = run_cli(*_summary_args(four_targets, fifo))
    assert result.code == 0, result.stderr
    summary = json.loads(reader.result())
    assert summary["exit_code"] == 0 and summary["totals"]["succeeded"] == 1
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_dev_full_summary_is_one_line_and_the_event_says_the_same_exit_code(four_targets):
    result = run_cli(*_summary_args(four_targets, "/dev/full", "--format", "json"))
    assert result.code == 1
    assert result.stderr.splitlines() == [
        "pdb-sync: error: --summary /dev/full: cannot write: No space left on device"
    ]
    finished = result.events[-1]
    assert finished["type"] == "run_finished"
    assert finished["summary"]["totals"]["succeeded"] == 1  # the sync itself went fine
    assert finished["summary"]["exit_code"] == result.code
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_dev_null_summary_is_fine(four_targets):
    result = run_cli(*_summary_args(four_targets, "/dev/null"))
    assert result.code == 0, result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_directory_summary_is_refused_before_any_rsync_runs(four_targets, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli(*_summary_args(four_targets, out, "--format", "json"))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"pdb-sync: error: --summary {out}: is a directory; give the path of a file"
    ]
    assert result.stdout == b""  # not even run_started
    assert not (tmp_path / "pdb").exists()  # no target's dest was created
    assert os.listdir(out) == []


def test_log_file_through_a_symlink_keeps_the_link(four_targets, tmp_path):
    target = tmp_path / "logs" / "diag.jsonl"
    target.parent.mkdir()
    link = tmp_path / "diag.jsonl"
    link.symlink_to(target)
    result = run_cli("--config", str(four_targets), "--log-file", str(link), "sync", "emdb")
    assert result.code == 0, result.stderr
    assert link.is_symlink()
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert records and all("record" in record for record in records)


def test_log_file_on_dev_full_warns_once_and_the_run_goes_on(four_targets):
    result = run_cli("--config", str(four_targets), "--log-file", "/dev/full", "sync", "emdb")
    assert result.code == 0
    assert result.stderr.splitlines() == [
        "pdb-sync: warning: --log-file /dev/full: cannot write: No space left on device; "
        "no more diagnostics go there"
    ]


def test_dry_run_with_summary_says_no_summary_is_written(four_targets, tmp_path):
    summary = tmp_path / "summary.json"
    result = run_cli(*_summary_args(four_targets, summary, "--dry-run", "--format", "json"))
    assert result.code == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"pdb-sync: note: --dry-run writes no summary; {summary} was not written"
    ]
    assert [orjson.loads(line)["type"] for line in result.stdout.splitlines()] == ["dry_run"]
    assert not summary.exists()


def test_plan_to_dev_full_reports_the_process_exit_code_in_its_last_event(four_targets):
    result = run_cli(*_summary_args(four_targets, "/dev/full", "--plan", "--format", "json"))
    assert result.code == 1
    finished = result.events[-1]
    assert finished["type"] == "plan_finished"
    assert finished["plan"]["totals"]["planned"] == 1
    assert finished["plan"]["exit_code"] == result.code
    assert result.stderr.splitlines() == [
        "pdb-sync: error: --summary /dev/full: cannot write: No space left on device"
    ]


def test_log_stream_to_a_fifo_without_a_reader_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "FIFO_WAIT_S", 0.2)
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as caught:
        open_for_append(fifo, "--log-file")
    assert caught.value.message == f"--log-file {fifo}: no process read the FIFO within 0.2 s"


def test_log_stream_to_a_fifo_reaches_its_reader(tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    with open_for_append(fifo, "--log-file") as stream:
        stream.write(b'{"text": "one"}\n')
    assert reader.result() == b'{"text": "one"}\n'
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
