"""A real single-node Slurm (slurmctld, slurmd, munged from Debian's slurm-wlm and munge)
on 127.0.0.1, configured in a temporary directory, for tests/test_slurm.py.

What it takes on a machine without systemd: ``/run/munge`` (owner munge, 0755) and
``munged`` started as the munge user; ``proctrack/linuxproc`` and ``task/none`` need no
cgroups; ``SlurmdParameters=config_overrides`` with more ``CPUs`` than the machine has
lets several tasks run at once; ``MinJobAge=5`` keeps ``sbatch --wait`` polling every
2 s; ``batch_sched_delay=0``; the controller's first scheduling pass comes a few seconds
after start, so :meth:`start` waits for a probe job. Daemons stopped here may linger
as zombies (their parent is not us), so "gone" means no live process, by state.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: What the cluster needs, and the package that brings each (scripts/bootstrap.sh).
BINARIES = {"slurmctld": "slurm-wlm", "slurmd": "slurm-wlm", "sbatch": "slurm-wlm"}
MUNGE = "/usr/sbin/munged"
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
#: Seconds Slurm waits between SIGTERM and SIGKILL when a job ends early or overruns.
KILL_WAIT = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    for binary, package in BINARIES.items():
        if shutil.which(binary) is None:
            return f"{binary} is not installed (apt-get install {package}; scripts/bootstrap.sh)"
    if not Path(MUNGE).exists():
        return "munged is not installed (apt-get install munge; scripts/bootstrap.sh)"
    if os.geteuid() != 0:
        return "starting slurmd and munged needs root"
    return None


class SlurmCluster:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.conf = workdir / "slurm.conf"
        self.host = socket.gethostname().split(".", 1)[0]
        self.started_munge: int | None = None
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def config_text(self) -> str:
        d = self.dir
        return "\n".join(
            [
                "ClusterName=pdbsynctest",
                f"SlurmctldHost={self.host}(127.0.0.1)",
                f"SlurmctldPort={_free_port()}",
                f"SlurmdPort={_free_port()}",
                "AuthType=auth/munge",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={d}/state",
                f"SlurmdSpoolDir={d}/spool",
                f"SlurmctldPidFile={d}/slurmctld.pid",
                f"SlurmdPidFile={d}/slurmd.pid",
                f"SlurmctldLogFile={d}/slurmctld.log",
                f"SlurmdLogFile={d}/slurmd.log",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "MpiDefault=none",
                "ReturnToService=2",
                "SchedulerType=sched/builtin",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU",
                "SchedulerParameters=batch_sched_delay=0",
                "MinJobAge=5",
                f"KillWait={KILL_WAIT}",
                "InactiveLimit=0",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SlurmdParameters=config_overrides",
                f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs=16 State=UNKNOWN",
                f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def _munge_works(self) -> bool:
        if not MUNGE_SOCKET.exists():
            return False
        check = subprocess.run(
            "munge -n | unmunge", shell=True, capture_output=True, timeout=10, check=False
        )
        return check.returncode == 0

    def start(self) -> SlurmCluster:
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self.config_text())
        if not self._munge_works():
            run_dir = Path("/run/munge")
            run_dir.mkdir(parents=True, exist_ok=True)
            shutil.chown(run_dir, "munge", "munge")
            run_dir.chmod(0o755)
            subprocess.run(["runuser", "-u", "munge", "--", MUNGE], check=True, timeout=10)
            self.started_munge = _pid(run_dir / "munged.pid")
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([shutil.which(daemon), "-f", str(self.conf)], check=True, timeout=20)
        probe = subprocess.run(
            ["sbatch", "--wait", "--output=/dev/null", "--wrap=true"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if probe.returncode != 0:
            log = (self.dir / "slurmctld.log").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"Slurm probe job failed: {probe.stderr.strip()}\n{log}")
        return self

    def stop(self) -> None:
        """Cancel what still runs, wait for its job steps to end (a slurmstepd outlives
        a slurmd stopped under it), then stop the daemons we started."""
        subprocess.run(["scancel", "--user", "root"], env=self.env, timeout=10, check=False)
        deadline = time.monotonic() + KILL_WAIT + 10
        while time.monotonic() < deadline:
            queued = subprocess.run(
                ["squeue", "--noheader"], env=self.env, capture_output=True, text=True, check=False
            )
            if queued.returncode != 0 or not queued.stdout.strip():
                break
            time.sleep(0.2)
        pids = []
        for name in ("slurmd.pid", "slurmctld.pid"):
            pid = _pid(self.dir / name)
            if pid is not None:
                pids.append(pid)
                with _suppress():
                    os.kill(pid, signal.SIGTERM)
        if self.started_munge is not None:
            pids.append(self.started_munge)
            with _suppress():
                os.kill(self.started_munge, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                with _suppress():
                    os.kill(pid, signal.SIGKILL)
        for name in ("slurmd.pid", "slurmctld.pid"):
            (self.dir / name).unlink(missing_ok=True)
        Path("/run/slurmctld.pid").unlink(missing_ok=True)

    def sbatch(
        self, script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """``sbatch --wait [ARGS] SCRIPT`` in the background: its first line is the job id,
        its exit status the highest exit status of the job's tasks. ``env``: more
        variables for sbatch and, through it, the job."""
        return subprocess.Popen(
            ["sbatch", "--wait", "--parsable", *args, str(script)],
            cwd=cwd,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def final_state(self, job_id: str, timeout: float = 30.0) -> dict[str, str]:
        """``scontrol show job``'s fields once the job has ended and its exit status is
        in (polled: with no accounting database a job is forgotten MinJobAge seconds
        after it ends, and a job stopped by its time limit shows its final state before
        the batch script's exit status arrives). The last record seen, at the latest."""
        deadline = time.monotonic() + timeout
        last: dict[str, str] = {}
        while time.monotonic() < deadline:
            shown = subprocess.run(
                ["scontrol", "--oneliner", "show", "job", job_id],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
            fields = dict(part.split("=", 1) for part in shown.split() if "=" in part)
            if not fields and last:
                return last  # forgotten: what it said last is all there is
            last = fields or last
            ended = fields.get("JobState") not in (None, "PENDING", "RUNNING", "COMPLETING")
            if ended and fields.get("ExitCode") != "0:0":
                return fields
            time.sleep(0.2)
        return last

    def run(self, *argv: str) -> str:
        """A Slurm command's stdout (``scontrol``, ``squeue``); it must succeed."""
        done = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, (argv, done.stderr)
        return done.stdout

    def scancel(self, job_id: str) -> None:
        subprocess.run(["scancel", job_id], env=self.env, check=True, timeout=10)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError | PermissionError)
