"""Which mirror host a job talks to, for the per-host connection cap.

Public mirrors limit connections per client (``max connections`` in their rsyncd.conf)
and refuse the rest with exit 5; split targets and several targets on one mirror would
otherwise open as many connections as ``--parallel`` allows. The scheduler counts
running jobs per host with :func:`host_of` and starts no more than ``max_per_host`` on
one host at a time (pdbsync.run.scheduler).
"""

from __future__ import annotations

from pdbsync.rsync import url as rsync_url

#: How many rsync processes may talk to one mirror host at once, unless configured.
DEFAULT_MAX_PER_HOST = 4
#: The bounds of ``[sync] max_per_host`` and ``--max-per-host``.
MAX_PER_HOST_LIMIT = 100


def host_of(url: str) -> str:
    """The host part of an rsync daemon url, lower-cased (``rsync.rcsb.org``).

    The port is left out on purpose: two daemons of one machine share its uplink and
    its operator's patience. A url of neither form (a local path) is its own "host".
    """
    parsed = rsync_url.daemon(url)
    return parsed.host.lower() if parsed is not None else url
