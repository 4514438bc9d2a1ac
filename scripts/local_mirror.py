"""A real ``rsync --daemon`` on 127.0.0.1 serving a local tree: the built-in mirror.

Used by the demo, the test suite and the benchmark, so all three talk to the same kind
of server pdb-sync meets in production (an rsync daemon module), only on loopback.

    python scripts/local_mirror.py ROOT [--port P]     # serve ROOT until Ctrl-C

From Python::

    with LocalMirror(root, workdir) as mirror:
        mirror.add_module("slow", root, delay=1.0)     # each transfer waits 1 s first
        url = mirror.url("ftp_data", "structures/divided/mmCIF/")
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the daemon, before exec: SIGTERM when the process that started it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class LocalMirror:
    """An rsync daemon on 127.0.0.1 with named modules; start(), url(), stop()."""

    def __init__(
        self,
        root: Path,
        workdir: Path,
        port: int | None = None,
        daemon_args: tuple[str, ...] = (),
        motd: str | None = None,
    ) -> None:
        """``daemon_args``: extra ``rsync --daemon`` options, e.g. ``("--bwlimit=20",)``
        for a mirror that serves every client slowly. ``motd``: the daemon's message of
        the day (``motd file``), which every client prints on stdout before its transfer,
        as public mirrors do with their notices."""
        self.daemon_args = tuple(daemon_args)
        self.motd = motd
        self.root = Path(root).resolve()
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.modules: dict[str, dict[str, str]] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.add_module("ftp_data", self.root)

    def add_module(
        self,
        name: str,
        path: Path,
        *,
        delay: float | None = None,
        fail_first: int | None = None,
        **params: str,
    ) -> None:
        """Declare a module. ``delay``: seconds every transfer waits (pre-xfer exec);
        ``fail_first``: refuse the first N connections (a flaky mirror), then serve."""
        module = {"path": str(Path(path).resolve()), "read only": "yes", **params}
        hooks = []
        if fail_first is not None:
            counter = self.workdir / f"{name}.connections"
            counter.write_text("0")
            script = self.workdir / f"{name}.flaky.sh"
            script.write_text(
                "#!/bin/sh\n"
                f'n=$(cat "{counter}"); n=$((n+1)); echo "$n" > "{counter}"\n'
                f'[ "$n" -gt {int(fail_first)} ]\n'
            )
            script.chmod(0o755)
            hooks.append(str(script))
        if delay is not None:
            hooks.append(f"sleep {float(delay)}")
        if hooks:
            module["pre-xfer exec"] = " && ".join(hooks)
        self.modules[name] = module

    def connections(self, name: str) -> int:
        """How many transfers a ``fail_first`` module has been asked for so far."""
        return int((self.workdir / f"{name}.connections").read_text().strip() or 0)

    def config_text(self) -> str:
        lines = [
            "use chroot = no",
            f"uid = {os.getuid()}",
            f"gid = {os.getgid()}",
            f"pid file = {self.workdir / 'rsyncd.pid'}",
            f"log file = {self.workdir / 'rsyncd.log'}",
            "max connections = 0",
        ]
        if self.motd is not None:
            lines.append(f"motd file = {self.workdir / 'motd'}")
        lines.append("")
        for name, params in self.modules.items():
            lines.append(f"[{name}]")
            lines += [f"    {key} = {value}" for key, value in params.items()]
            lines.append("")
        return "\n".join(lines)

    def start(self, timeout: float = 10.0) -> LocalMirror:
        """Start the daemon and return once it accepts connections."""
        rsync = shutil.which("rsync")
        if rsync is None:
            raise RuntimeError("rsync is not installed (apt-get install rsync)")
        conf = self.workdir / "rsyncd.conf"
        conf.write_text(self.config_text())
        if self.motd is not None:
            (self.workdir / "motd").write_text(self.motd)
        (self.workdir / "rsyncd.pid").unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                rsync,
                "--daemon",
                "--no-detach",
                f"--config={conf}",
                "--address=127.0.0.1",
                f"--port={self.port}",
                *self.daemon_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "rsyncd.stderr", "wb"),  # noqa: SIM115
            start_new_session=True,  # stop() ends connection handlers (pre-xfer sleeps) too
            preexec_fn=_die_with_parent,  # a killed demo or test run leaves no daemon
        )
        deadline = time.monotonic() + timeout
        while True:  # readiness check: the port accepts a connection
            if self.process.poll() is not None:
                err = (self.workdir / "rsyncd.stderr").read_text()
                raise RuntimeError(f"rsync daemon exited ({self.process.returncode}): {err}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"rsync daemon did not listen on {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def url(self, module: str = "ftp_data", path: str = "") -> str:
        return f"rsync://127.0.0.1:{self.port}/{module}/{path}"

    def __enter__(self) -> LocalMirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve ROOT with an rsync daemon on 127.0.0.1")
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--workdir", type=Path, default=Path(".local-mirror"))
    args = parser.parse_args()
    mirror = LocalMirror(args.root, args.workdir, args.port).start()
    print(f"serving {args.root} at {mirror.url()}  (Ctrl-C to stop)", flush=True)
    try:
        assert mirror.process is not None
        mirror.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        mirror.stop()
    print(shlex.join(["stopped", mirror.url()]), file=sys.stderr)


if __name__ == "__main__":
    main()
