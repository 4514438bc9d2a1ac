"""One grammar of rsync operands (pdbsync.rsync.url), and the three readers of a URL that
go through it: the config's check of a source, the per-host connection cap, and a
mirror's host, port and module."""

from __future__ import annotations

import pytest

from pdbsync.config.load import url_problem
from pdbsync.mirrors.registry import endpoint, module
from pdbsync.rsync.hosts import host_of
from pdbsync.rsync.url import DAEMON, LOCAL, SSH, RsyncUrl, daemon, parse


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # rsync://host[:port]/module/path
        (
            "rsync://rsync.rcsb.org:33444/ftp_data/structures/",
            RsyncUrl(DAEMON, "rsync.rcsb.org", 33444, "ftp_data/structures/", scheme=True),
        ),
        ("rsync://h/m", RsyncUrl(DAEMON, "h", None, "m", scheme=True)),
        ("rsync://h/", RsyncUrl(DAEMON, "h", None, "", scheme=True)),
        ("rsync://[::1]:873/m/x", RsyncUrl(DAEMON, "[::1]", 873, "m/x", scheme=True)),
        ("rsync://h/m/a:b", RsyncUrl(DAEMON, "h", None, "m/a:b", scheme=True)),
        # host::module/path
        (
            "data.pdbj.org::rsync/pub/pdb/",
            RsyncUrl(DAEMON, "data.pdbj.org", None, "rsync/pub/pdb/"),
        ),
        ("[fe80::1]::m/", RsyncUrl(DAEMON, "[fe80::1]", None, "m/")),
        ("h::", RsyncUrl(DAEMON, "h", None, "")),
        ("user@h::m", RsyncUrl(DAEMON, "user@h", None, "m")),
        ("h:::m", RsyncUrl(DAEMON, "h", None, ":m")),  # the first "::" ends the host
        # host:path (a remote shell)
        ("h:/srv/pdb", RsyncUrl(SSH, "h", None, "/srv/pdb")),
        ("h:", RsyncUrl(SSH, "h", None, "")),
        ("[::1]:x", RsyncUrl(SSH, "[::1]", None, "x")),
        ("rsync:/x", RsyncUrl(SSH, "rsync", None, "/x")),  # one slash: not the scheme
        # local paths: no colon before the first slash
        ("/srv/pdb/data/", RsyncUrl(LOCAL, "", None, "/srv/pdb/data/")),
        ("./a:b", RsyncUrl(LOCAL, "", None, "./a:b")),
        ("relative/dir", RsyncUrl(LOCAL, "", None, "relative/dir")),
        (":x", RsyncUrl(LOCAL, "", None, ":x")),  # no host before the colon
    ],
)
def test_rsync_reads_each_form_by_its_first_characters(url, expected):
    assert parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "rsync://h",  # no "/" after the host: no module part at all
        "rsync://h:873",
        "rsync://h:/m",  # an empty port
        "rsync://h:x/m",  # a port that is not a number
        "rsync:///m",  # no host
        "rsync://[]/m",  # an empty address
    ],
)
def test_a_broken_rsync_scheme_url_is_nothing(url):
    assert parse(url) is None
    assert daemon(url) is None


def test_a_daemon_url_knows_its_module_and_address():
    parsed = daemon("rsync://[2001:db8::1]:8873/ftp_data/x/")
    assert parsed is not None
    assert (parsed.address, parsed.port, parsed.module) == ("2001:db8::1", 8873, "ftp_data")
    assert daemon("h:/path") is None and daemon("/local") is None


# -- the three readers agree ------------------------------------------------------------

#: URLs the three readers of a URL disagreed on, or that sit on a rule's edge.
ODD = [
    "rsync://Mirror.Example.org:33444/ftp_data/x/",
    "rsync://h",
    "rsync://h:873",
    "rsync://h/",
    "rsync://h:0/m/",
    "rsync://h:99999/m/",
    "rsync://h:x/m",
    "rsync://127.0.0.1/m/a:b",
    "Data.PDBj.org::rsync/pub/",
    "h::m:x",
    "h:::m",
    "h:/srv/pdb",
    "/srv/pdb",
    "rsync://h_x/m/",
]


@pytest.mark.parametrize("url", ODD)
def test_the_host_cap_and_the_mirror_registry_read_the_same_host(url):
    """host_of (the per-host cap) and endpoint (a mirror's host and port) read one host
    out of every URL that names a daemon, and both know when a URL names none."""
    parsed = daemon(url)
    if parsed is None:
        with pytest.raises(ValueError, match="not an rsync daemon URL"):
            endpoint(url)
        assert host_of(url) == url  # a URL of no daemon is its own "host"
    else:
        host, _port = endpoint(url)
        assert host_of(url) == host.lower()
        assert module(url) == parsed.module


def test_the_cap_counts_a_scheme_url_without_a_module_as_its_own_host():
    """host_of read ``rsync://h`` as host ``h`` where the registry refused it as no
    daemon URL; now both read it as no daemon URL."""
    assert host_of("rsync://h") == "rsync://h"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("rsync://h", "is not an rsync daemon URL"),
        ("rsync://h:x/m", "is not an rsync daemon URL"),
        ("h:/srv/pdb", "is not an rsync daemon URL"),
        ("/srv/pdb", "is not an rsync daemon URL"),
        ("rsync://h_x/m/", "is not an rsync daemon URL"),  # the config's host rule
        ("h::m:x", "is not an rsync daemon URL"),  # no ':' after host::
        ("h:::m", "is not an rsync daemon URL"),
        ("rsync://h/", "names no rsync module"),
        ("h::", "names no rsync module"),
        ("rsync://h:0/m/", "has port 0, outside 1..65535"),
        ("rsync://h:99999/m/", "has port 99999, outside 1..65535"),
        ("rsync://h:123456/m/", "has port 123456, outside 1..65535"),
        ("rsync://h/m/../x", "contains '..'"),
    ],
)
def test_the_config_refuses_what_is_no_daemon_source(url, problem):
    found = url_problem(url)
    assert found is not None and problem in found, found


@pytest.mark.parametrize(
    "url",
    [
        "rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/",
        "rsync://127.0.0.1/m/a:b",
        "data.pdbj.org::rsync/pub/pdb/data/",
        "rsync://h:65535/m",
    ],
)
def test_the_config_takes_every_daemon_source(url):
    assert url_problem(url) is None
    assert daemon(url) is not None
