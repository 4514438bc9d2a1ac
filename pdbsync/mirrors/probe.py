"""Asking rsync daemons whether they are there, and how far away they are.

A probe is what an rsync client does first: open a TCP connection and read the daemon's
greeting, ``@RSYNCD: <protocol>``. That measures the round trips a transfer will pay
without transferring anything, and it tells a listener that never answers (a firewall
that accepts and stalls, a wedged daemon) from a real one. Every socket operation has a
timeout and every probe a shared deadline, so a command that probes is bounded however
the network behaves. Mirrors are probed concurrently, one thread each: the commands that
probe are short-lived and the work is waiting on sockets.
"""

from __future__ import annotations

import re
import socket
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from pdbsync.mirrors import registry as mirrors

#: Probes per mirror; the latency reported is their median.
PROBES = 3
#: Seconds one connect or one read may take.
PROBE_TIMEOUT = 3.0
#: Seconds a whole ``mirrors test`` (or an ``auto`` choice, or doctor's check) may take.
TOTAL_TIMEOUT = 10.0
_GREETING = re.compile(rb"^@RSYNCD: (\d+)\.(\d+)")
_MAX_LINE = 4096


class ProbeFailed(Exception):
    """One probe did not get a greeting; the message says what happened instead."""


@dataclass
class ProbeResult:
    """What probing one mirror found (``latency_ms`` is the median of the probes)."""

    id: str
    url: str
    host: str
    port: int
    reachable: bool
    latency_ms: float | None = None
    samples_ms: list[float] = field(default_factory=list)
    protocol: str | None = None
    module: str = ""
    module_listed: bool | None = None  # None: the daemon's module list was not read
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _remaining(deadline: float, timeout: float) -> float:
    left = min(timeout, deadline - time.monotonic())
    if left <= 0:
        raise ProbeFailed("gave up: the probe's time was up")
    return left


def _read_line(sock: socket.socket, deadline: float, timeout: float) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        sock.settimeout(_remaining(deadline, timeout))
        try:
            chunk = sock.recv(1)
        except TimeoutError:
            raise ProbeFailed(f"no answer within {timeout:g}s") from None
        if not chunk:
            raise ProbeFailed("connection closed by the server")
        data += chunk
        if len(data) > _MAX_LINE:
            raise ProbeFailed("not an rsync daemon (line too long)")
    return data


def greet(
    host: str, port: int, timeout: float = PROBE_TIMEOUT, deadline: float | None = None
) -> tuple[float, str, socket.socket]:
    """Connect and read the daemon's greeting: (seconds it took, protocol, open socket).

    The caller closes the socket. Raises :class:`ProbeFailed` with a short reason.
    """
    deadline = deadline if deadline is not None else time.monotonic() + timeout
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=_remaining(deadline, timeout))
    except TimeoutError:
        raise ProbeFailed(f"connect timed out after {timeout:g}s") from None
    except socket.gaierror as exc:
        raise ProbeFailed(f"cannot resolve {host}: {exc.strerror}") from None
    except OSError as exc:
        raise ProbeFailed(exc.strerror or str(exc)) from None
    try:
        line = _read_line(sock, deadline, timeout)
    except (ProbeFailed, OSError) as exc:
        sock.close()
        raise ProbeFailed(str(exc) if isinstance(exc, ProbeFailed) else exc.strerror) from None
    elapsed = time.monotonic() - started
    match = _GREETING.match(line)
    if not match:
        sock.close()
        shown = line[:40].decode("ascii", "replace").strip()
        raise ProbeFailed(f"not an rsync daemon (it said {shown!r})")
    return elapsed, f"{int(match[1])}.{int(match[2])}", sock


def list_modules(sock: socket.socket, deadline: float, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """The module names a greeted daemon lists (``#list``); the socket is used up."""
    sock.sendall(b"@RSYNCD: 30.0\n#list\n")
    names = []
    while True:
        line = _read_line(sock, deadline, timeout).decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("@RSYNCD: EXIT"):
            return names
        if line.startswith("@ERROR"):
            raise ProbeFailed(line)
        if line and not line.startswith("@RSYNCD:") and not line[0].isspace():
            names.append(line.split()[0])


def probe(
    mirror_id: str,
    url: str,
    probes: int = PROBES,
    timeout: float = PROBE_TIMEOUT,
    deadline: float | None = None,
) -> ProbeResult:
    """Probe the daemon serving ``url`` up to ``probes`` times; the first also lists modules.

    A failed probe ends the probing of that mirror (a listener that never answers would
    otherwise cost ``probes`` timeouts). Unreachable results carry the reason.
    """
    deadline = deadline if deadline is not None else time.monotonic() + TOTAL_TIMEOUT
    host, port = mirrors.endpoint(url)
    result = ProbeResult(mirror_id, url, host, port, False, module=mirrors.module(url))
    for number in range(probes):
        try:
            elapsed, protocol, sock = greet(host, port, timeout, deadline)
        except ProbeFailed as exc:
            if not result.samples_ms:
                result.error = str(exc)
            break
        with sock:
            result.samples_ms.append(round(elapsed * 1000, 2))
            result.protocol = protocol
            if number == 0:
                try:
                    result.module_listed = result.module in list_modules(sock, deadline, timeout)
                except (ProbeFailed, OSError):
                    result.module_listed = None  # some daemons hang up on #list; not fatal
    if result.samples_ms:
        result.reachable = True
        result.latency_ms = round(statistics.median(result.samples_ms), 2)
    return result


def probe_all(
    targets: Sequence[tuple[str, str]],
    probes: int = PROBES,
    timeout: float = PROBE_TIMEOUT,
    total: float = TOTAL_TIMEOUT,
) -> list[ProbeResult]:
    """Probe every ``(id, url)`` at once, all within ``total`` seconds; results in order."""
    if not targets:
        return []
    deadline = time.monotonic() + total
    with ThreadPoolExecutor(max_workers=min(len(targets), 32)) as pool:
        futures = [pool.submit(probe, i, url, probes, timeout, deadline) for i, url in targets]
        return [future.result() for future in futures]


def ranked(results: Sequence[ProbeResult]) -> list[ProbeResult]:
    """The reachable results, lowest latency first (ties: the order given)."""
    return sorted((r for r in results if r.reachable), key=lambda r: r.latency_ms or 0.0)
