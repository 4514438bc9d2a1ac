"""The mirror registry, ``mirrors list``/``mirrors test``, ``mirror = "auto"`` and its
fallback, against real rsync daemons on 127.0.0.1 (every built-in id is pointed at a
local daemon, a closed port or a silent listener: no real mirror is ever contacted)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest
from conftest import assert_valid_events, run_cli
from local_mirror import free_port

from pdbsync.config.load import load_config
from pdbsync.errors import ConfigError
from pdbsync.mirrors import registry as mirrors
from pdbsync.rsync.argv import RsyncArgv
from pdbsync.run.jobs import Job

MMCIF = "structures/divided/mmCIF/"


@pytest.fixture
def silent():
    """A TCP listener whose connections complete (in its backlog) and never hear a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


@pytest.fixture
def silent_port(silent):
    return silent.getsockname()[1]


def _connections(listener: socket.socket) -> int:
    """How many connections reached ``listener`` (accepted now, then closed)."""
    listener.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def _daemon_protocol() -> str:
    """The protocol the local daemon speaks, from rsync's own --version (not hard-coded)."""
    out = subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout
    return re.search(r"protocol version (\d+)", out)[1]


def _mirrors_toml(**urls: str) -> str:
    """``[mirrors.ID] url = ...`` for each given id; every built-in id must be given so
    nothing reaches a real host."""
    missing = {m.id for m in mirrors.BUILTIN} - set(urls)
    assert not missing, f"point every built-in mirror at 127.0.0.1: {missing}"
    return "".join(f'\n[mirrors.{i}]\nurl = "{url}"\n' for i, url in urls.items())


def _config(tmp_path: Path, body: str, **urls: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\npdb_dir = "{tmp_path / "pdb"}"\n{body}{_mirrors_toml(**urls)}')
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PDB_SYNC_STATE_DIR": str(tmp_path / "state")}


def _all_local(mirror, dead: str) -> dict[str, str]:
    """rcsb on the local daemon, the others on a closed port."""
    return {"rcsb": mirror.url("ftp_data"), "pdbj": dead, "pdbe": dead, "wwpdb": dead}


# -- the registry and resolution -----------------------------------------------------


def test_builtin_registry_has_the_four_partners_with_their_aliases():
    registry = mirrors.registry()
    assert list(registry) == ["rcsb", "pdbj", "pdbe", "wwpdb"]
    assert registry["rcsb"].url == "rsync://rsync.rcsb.org:33444/ftp_data/"
    assert registry["rcsb"].port == 33444 and registry["pdbj"].port == 873
    assert registry["pdbj"].source(MMCIF) == "data.pdbj.org::rsync/pub/pdb/data/" + MMCIF
    for alias, mirror_id in {"us": "rcsb", "JP": "pdbj", "eu": "pdbe", "uk": "pdbe"}.items():
        assert mirrors.canonical_id(alias) == mirror_id
    assert mirrors.canonical_id("global") == "wwpdb" and mirrors.canonical_id("nope") is None


def test_path_targets_resolve_on_the_mirror_and_url_wins(tmp_path, mirror):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    body = (
        '[sync]\nmirror = "jp"\n'
        f'[sync.custom.a]\npath = "{MMCIF}"\ndest = "a"\n'
        f'[sync.custom.b]\nmirror = "rcsb"\npath = "sifts/"\ndest = "b"\n'
        f'[sync.custom.c]\nmirror = "pdbj"\nurl = "{mirror.url("ftp_data", "emdb/")}"\ndest = "c"\n'
    )
    urls = {"rcsb": mirror.url("ftp_data"), "pdbj": dead, "pdbe": dead, "wwpdb": dead}
    config = load_config(_config(tmp_path, body, **urls))
    a, b, c = config.targets["a"], config.targets["b"], config.targets["c"]
    assert (a.mirror, a.mirror_reason, a.url) == ("pdbj", "[sync] mirror", dead + MMCIF)
    assert (b.mirror, b.mirror_reason, b.url) == (
        "rcsb",
        "target",
        mirror.url("ftp_data", "sifts/"),
    )
    assert (c.mirror, c.url) == (None, mirror.url("ftp_data", "emdb/"))
    # --mirror overrides every path target for the run; a url still wins.
    run = load_config(_config(tmp_path, body, **urls), mirror="us")
    assert {n: (t.mirror, t.mirror_reason) for n, t in run.targets.items()} == {
        "a": ("rcsb", "--mirror"),
        "b": ("rcsb", "--mirror"),
        "c": (None, "url"),
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[sync.custom.a]\nmirror = "mars"\npath = "x/"\ndest = "a"\n', "sync.custom.a.mirror: "),
        ('[sync]\nmirror = "mars"\n', "sync.mirror: unknown mirror 'mars'"),
        ('[sync.custom.a]\npath = "../etc/"\ndest = "a"\n', "sync.custom.a.path: "),
        ('[sync.custom.a]\nmirror = "rcsb"\ndest = "a"\n', "missing required key 'url' (or 'path'"),
        ('[mirrors.mine]\nname = "no url"\n', "mirrors.mine: missing required key 'url'"),
        ('[mirrors.mine]\nurl = "http://x/"\n', "mirrors.mine.url: "),
    ],
)
def test_bad_mirror_settings_are_one_line_exit_2(tmp_path, body, expected):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    path = _config(tmp_path, body, rcsb=dead, pdbj=dead, pdbe=dead, wwpdb=dead)
    result = run_cli("--config", str(path), "config", "validate")
    assert result.code == 2
    assert expected in result.stderr, result.stderr
    if "unknown mirror" in expected:
        assert "known mirrors: rcsb (us), pdbj (jp), pdbe (uk, eu), wwpdb (global)" in result.stderr


def test_unknown_mirror_on_the_command_line_is_a_usage_error(tmp_path, mirror):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    path = _config(
        tmp_path, f'[sync.custom.a]\npath = "{MMCIF}"\ndest = "a"\n', **_all_local(mirror, dead)
    )
    result = run_cli("--config", str(path), "sync", "--mirror", "mars", environ=_env(tmp_path))
    assert result.code == 2
    assert result.stderr.startswith("pdb-sync: error: --mirror: unknown mirror 'mars'")
    assert not (tmp_path / "pdb").exists()


def test_listings_say_which_mirror_and_why(tmp_path, mirror):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    body = f'[sync.custom.a]\npath = "{MMCIF}"\ndest = "a"\n'
    path = _config(tmp_path, body, **_all_local(mirror, dead))
    listed = run_cli("--config", str(path), "sync", "--list")
    assert f"url:  {mirror.url('ftp_data', MMCIF)} (mirror rcsb, from default)" in listed.text
    shown = orjson.loads(
        run_cli("--config", str(path), "config", "show", "a", "--format", "json").stdout
    )
    assert (shown["mirror"], shown["mirror_reason"]) == ("rcsb", "default")
    table = run_cli("--config", str(path), "config", "list").text.splitlines()
    assert table[1].split()[:3] == ["a", "-", "rcsb"]


# -- mirrors list / mirrors test ------------------------------------------------------


def test_mirrors_list_shows_builtins_and_config_overrides(tmp_path, mirror):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    body = '[mirrors.lab]\nurl = "rsync://127.0.0.1:9/data/"\nname = "Lab copy"\nregion = "here"\n'
    path = _config(tmp_path, body, **_all_local(mirror, dead))
    rows = orjson.loads(
        run_cli("--config", str(path), "mirrors", "list", "--format", "json").stdout
    )
    by_id = {row["id"]: row for row in rows}
    assert list(by_id) == ["rcsb", "pdbj", "pdbe", "wwpdb", "lab"]
    assert by_id["rcsb"]["url"] == mirror.url("ftp_data") and by_id["rcsb"]["source"] == "config"
    assert by_id["rcsb"]["aliases"] == ["us"]  # an override keeps the aliases
    assert by_id["lab"] == {
        "id": "lab",
        "aliases": [],
        "name": "Lab copy",
        "region": "here",
        "url": "rsync://127.0.0.1:9/data/",
        "source": "config",
    }


def test_mirrors_test_reports_reachable_refused_and_silent(tmp_path, mirror, silent):
    closed = free_port()
    urls = {
        "rcsb": mirror.url("ftp_data"),
        "pdbj": f"rsync://127.0.0.1:{closed}/rsync/",
        "pdbe": f"rsync://127.0.0.1:{silent.getsockname()[1]}/pub/",
        "wwpdb": mirror.url("no_such_module"),
    }
    path = _config(tmp_path, "", **urls)
    result = run_cli("--config", str(path), "mirrors", "test", "--format", "json", "--timeout", "1")
    assert result.code == 1  # one or more unreachable
    data = orjson.loads(result.stdout)
    by_id = {r["id"]: r for r in data["results"]}
    rcsb = by_id["rcsb"]
    assert rcsb["reachable"] and rcsb["protocol"].split(".")[0] == _daemon_protocol()
    assert len(rcsb["samples_ms"]) == 3 and rcsb["latency_ms"] == sorted(rcsb["samples_ms"])[1]
    assert rcsb["module_listed"] is True
    assert by_id["wwpdb"]["reachable"] and by_id["wwpdb"]["module_listed"] is False
    assert not by_id["pdbj"]["reachable"] and "refused" in by_id["pdbj"]["error"].lower()
    assert not by_id["pdbe"]["reachable"] and "no answer within 1s" in by_id["pdbe"]["error"]
    assert data["fastest"] in {"rcsb", "wwpdb"}
    # A mirror that never answers costs one timeout, not one per probe: once its first
    # probe failed, no second connection was made.
    assert _connections(silent) == 1


class _Rendezvous:
    """Two rsync-daemon greeters on 127.0.0.1 that each answer a connection only once
    the other one has been reached: both are reachable only if they are probed at once."""

    def __init__(self) -> None:
        self.listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
        self.reached = [threading.Event(), threading.Event()]
        self.threads = [
            threading.Thread(target=self._serve, args=(side,), daemon=True) for side in (0, 1)
        ]
        for thread in self.threads:
            thread.start()

    def url(self, side: int) -> str:
        return f"rsync://127.0.0.1:{self.listeners[side].getsockname()[1]}/pub/"

    def _serve(self, side: int) -> None:
        with contextlib.suppress(OSError):  # closed by close()
            while True:
                conn, _ = self.listeners[side].accept()
                self.reached[side].set()
                threading.Thread(target=self._greet, args=(conn, side), daemon=True).start()

    def _greet(self, conn: socket.socket, side: int) -> None:
        with conn, contextlib.suppress(OSError):
            if self.reached[1 - side].wait(timeout=30):
                conn.sendall(b"@RSYNCD: 31.0\n@RSYNCD: EXIT\n")
                conn.recv(100)  # until the client is done with it

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()


def test_mirrors_are_probed_at_once(tmp_path, mirror):
    """Probed one after the other, the first of two mirrors that wait for each other
    would time out; probed at once (as ``mirrors test`` must, so that a silent mirror
    costs the command one timeout, not one per mirror), both answer."""
    pair = _Rendezvous()
    try:
        urls = _all_local(mirror, f"rsync://127.0.0.1:{free_port()}/x/")
        urls.update(rcsb=pair.url(0), pdbj=pair.url(1))
        path = _config(tmp_path, "", **urls)
        result = run_cli(
            "--config", str(path), "mirrors", "test", "rcsb", "pdbj", "--format", "json"
        )
    finally:
        pair.close()
    assert result.code == 0, result.stdout
    by_id = {r["id"]: r for r in orjson.loads(result.stdout)["results"]}
    assert by_id["rcsb"]["reachable"] and by_id["pdbj"]["reachable"], by_id


def test_mirrors_test_of_named_ids_text(tmp_path, mirror):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    path = _config(tmp_path, "", **_all_local(mirror, dead))
    result = run_cli("--config", str(path), "mirrors", "test", "us")
    assert result.code == 0, result.text
    lines = result.text.splitlines()
    assert lines[0].split()[:4] == ["ID", "REACHABLE", "LATENCY", "PROTOCOL"]
    assert len(lines) == 2 and lines[1].split()[:2] == ["rcsb", "yes"]
    unknown = run_cli("--config", str(path), "mirrors", "test", "mars")
    assert unknown.code == 2 and "unknown mirror 'mars'" in unknown.stderr


# -- sync through a mirror, auto, fallback --------------------------------------------


def test_sync_of_a_path_target_uses_the_mirror_and_says_so(tmp_path, mirror, archive):
    dead = f"rsync://127.0.0.1:{free_port()}/x/"
    path = _config(
        tmp_path, f'[sync.custom.a]\npath = "{MMCIF}"\ndest = "a"\n', **_all_local(mirror, dead)
    )
    result = run_cli("--config", str(path), "sync", "--format", "json", environ=_env(tmp_path))
    assert result.code == 0, result.stderr
    assert_valid_events(result.events)
    (entry,) = result.events[-1]["summary"]["results"]
    assert (entry["mirror"], entry["mirror_reason"]) == ("rcsb", "default")
    assert entry["url"] == mirror.url("ftp_data", MMCIF)
    expected = sorted(p.name for p in (archive / MMCIF).rglob("*") if p.is_file())
    assert sorted(p.name for p in (tmp_path / "pdb" / "a").rglob("*") if p.is_file()) == expected


def test_auto_picks_the_reachable_mirror_and_caches_the_choice(tmp_path, mirror, silent_port):
    closed = free_port()
    urls = {
        "rcsb": f"rsync://127.0.0.1:{closed}/ftp_data/",
        "pdbj": f"rsync://127.0.0.1:{silent_port}/rsync/",
        "pdbe": mirror.url("ftp_data"),
        "wwpdb": f"rsync://127.0.0.1:{closed}/ftp_data/",
    }
    body = f'[sync]\nmirror = "auto"\n[sync.custom.a]\npath = "{MMCIF}"\ndest = "a"\n'
    path = _config(tmp_path, body, **urls)
    first = run_cli("--config", str(path), "sync", "--format", "json", environ=_env(tmp_path))
    assert first.code == 0, first.stderr
    (entry,) = first.events[-1]["summary"]["results"]
    assert entry["mirror"] == "pdbe" and entry["mirror_reason"].startswith("auto: lowest latency")
    assert "measured now" in entry["mirror_reason"]
    assert "pdb-sync: note: mirror auto: using pdbe" in first.stderr
    cache = orjson.loads((tmp_path / "state" / "mirrors.json").read_bytes())
    assert cache["chosen"] == "pdbe" and cache["order"] == ["pdbe"]  # unreachable: never
    assert {m["id"]: m["reachable"] for m in cache["measurements"]} == {
        "rcsb": False,
        "pdbj": False,
        "pdbe": True,
        "wwpdb": False,
    }
    again = run_cli("--config", str(path), "sync", "--format", "json", environ=_env(tmp_path))
    (entry,) = again.events[-1]["summary"]["results"]
    assert entry["mirror"] == "pdbe" and "ago (cache " in entry["mirror_reason"]


def test_auto_with_no_reachable_mirror_is_one_line_exit_2(tmp_path):
    closed = f"rsync://127.0.0.1:{free_port()}/x/"
    body = f'[sync.custom.a]\nmirror = "auto"\npath = "{MMCIF}"\ndest = "a"\n'
    path = _config(tmp_path, body, rcsb=closed, pdbj=closed, pdbe=closed, wwpdb=closed)
    result = run_cli("--config", str(path), "sync", environ=_env(tmp_path))
    assert result.code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "mirror auto: no mirror is reachable (rcsb: Connection refused" in line
    assert not (tmp_path / "pdb").exists()


def test_a_mirror_that_fails_to_connect_falls_back_to_the_next_best(tmp_path, mirror):
    """The cached choice says rcsb is best, but rcsb's daemon is gone by the time the
    sync runs: the target moves to pdbe, as a retry, and says so."""
    closed = f"rsync://127.0.0.1:{free_port()}/ftp_data/"
    urls = {"rcsb": closed, "pdbj": closed, "pdbe": mirror.url("ftp_data"), "wwpdb": closed}
    body = f'[sync]\nmirror = "auto"\n[sync.custom.a]\npath = "{MMCIF}"\ndest = "a"\n'
    path = _config(tmp_path, body, **urls)
    registry = load_config(path).mirrors
    measured = [
        {"id": "rcsb", "reachable": True, "latency_ms": 1.0},
        {"id": "pdbj", "reachable": False, "latency_ms": None},
        {"id": "pdbe", "reachable": True, "latency_ms": 5.0},
        {"id": "wwpdb", "reachable": False, "latency_ms": None},
    ]
    state = tmp_path / "state"
    state.mkdir()
    (state / "mirrors.json").write_bytes(
        orjson.dumps(
            {
                "v": 1,
                "measured_epoch": time.time() - 5,
                "candidates": [[m.id, m.url] for m in registry.values()],
                "measurements": measured,
            }
        )
    )
    result = run_cli("--config", str(path), "sync", "--format", "json", environ=_env(tmp_path))
    assert result.code == 0, result.text
    assert_valid_events(result.events)
    (retry,) = [e for e in result.events if e["type"] == "retry"]
    assert retry["mirror"] == "pdbe" and retry["url"] == mirror.url("ftp_data", MMCIF)
    assert retry["exit_code"] == 10
    (entry,) = result.events[-1]["summary"]["results"]
    assert entry["status"] == "success" and entry["attempts"] == 2
    assert entry["mirror"] == "pdbe" and entry["mirror_reason"].startswith("fallback: rcsb")


def test_a_non_connection_failure_does_not_switch_mirror():
    job = Job(
        "t",
        "rsync://a/m/x/",
        Path("/d"),
        RsyncArgv("rsync", "rsync://a/m/x/", "/d"),
        mirror="a",
        mirror_reason="auto: ...",
        fallbacks=(("b", "rsync://b/m/x/"),),
    )
    refused = ["rsync: [Receiver] failed to connect to a (1.2.3.4): Connection refused (111)"]
    assert job.next_mirror(23, ["rsync: link_stat failed: No such file"]) is None
    assert job.next_mirror(0, []) is None
    switched = job.next_mirror(10, refused)
    assert switched is not None and switched.argv[-2] == "rsync://b/m/x/"
    assert switched.argv[:-2] == job.argv[:-2] and switched.fallbacks == ()
    assert switched.next_mirror(35, []) is None  # nothing left to try


def test_unreachable_is_never_chosen_and_region_preference_is_bounded():
    from pdbsync.mirrors.choice import order_mirrors

    registry = mirrors.registry()
    results = [
        {"id": "rcsb", "reachable": True, "latency_ms": 10.0},
        {"id": "pdbj", "reachable": True, "latency_ms": 19.0},
        {"id": "pdbe", "reachable": False, "latency_ms": None},
        {"id": "wwpdb", "reachable": True, "latency_ms": 30.0},
    ]
    assert order_mirrors(results, registry)[0] == ["rcsb", "pdbj", "wwpdb"]
    order, reason = order_mirrors(results, registry, "jp")
    assert order[0] == "pdbj" and "preferred region" in reason
    assert order_mirrors(results, registry, "europe")[0][0] == "rcsb"  # pdbe is down
    slow = [dict(r, latency_ms=25.0) if r["id"] == "pdbj" else r for r in results]
    assert order_mirrors(slow, registry, "jp")[0][0] == "rcsb"  # beyond 2x the best


def test_a_broken_config_is_not_silently_replaced_by_builtins(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[mirrors.rcsb]\nurl = 3\n")
    result = run_cli("--config", str(path), "mirrors", "list")
    assert result.code == 2 and "mirrors.rcsb.url" in result.stderr
    with pytest.raises(ConfigError):
        load_config(path)
