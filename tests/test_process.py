"""Signalling rsync's process group (pdbsync.rsync.process), the one way the worker and
the supervisor stop an rsync and the receiver it forked."""

from __future__ import annotations

import signal
import subprocess

from pdbsync.rsync import process
from pdbsync.run import supervisor, worker


def test_kill_group_ends_every_process_of_the_group():
    # a shell with a child in the background, as rsync with its receiver: both hold stdout
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 300 & echo started; sleep 300"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"started\n"
    assert process.group_alive(proc.pid)
    process.kill_group(proc.pid, signal.SIGTERM)
    assert proc.stdout.read() == b""  # end of file: no process of the group holds it now
    assert proc.wait() == -signal.SIGTERM
    proc.stdout.close()


def test_signalling_a_group_or_process_that_is_gone_is_no_error():
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    process.kill_group(proc.pid, signal.SIGKILL)
    process.kill_process(proc.pid, signal.SIGKILL)
    assert not process.group_alive(proc.pid)


def test_the_worker_and_the_supervisor_signal_through_the_same_function():
    assert worker.kill_group is supervisor.kill_group is process.kill_group
