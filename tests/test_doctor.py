"""``env doctor`` and rsync's security floor (CVE-2024-12084..12088) in ``sync``.

An old rsync is a shell script on PATH (conftest's ``old_rsync``) that answers
``--version`` with an old version and hands everything else to the real rsync, so a
sync still really runs.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from conftest import assert_valid_events, run_cli
from local_mirror import free_port

from pdbsync.rsync.program import RSYNC_CVES, patched_matches, vulnerability

CVES = [cve for cve, _what in RSYNC_CVES]


def _config(tmp_path: Path, mirror, sync: str = "", extra: str = "") -> Path:
    closed = f"rsync://127.0.0.1:{free_port()}/x/"
    mirrors = "".join(
        f'[mirrors.{i}]\nurl = "{url}"\n'
        for i, url in {
            "rcsb": mirror.url("ftp_data"),
            "pdbj": closed,
            "pdbe": closed,
            "wwpdb": closed,
        }.items()
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f'[paths]\npdb_dir = "{tmp_path / "pdb"}"\n'
        f"[sync]\n{sync}\n"
        '[sync.custom.sifts]\npath = "sifts/"\ndest = "sifts"\n'
        f"{mirrors}{extra}"
    )
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PDB_SYNC_STATE_DIR": str(tmp_path / "state")}


# -- the version rule -------------------------------------------------------------------


def test_versions_before_3_4_0_are_vulnerable_unless_acknowledged():
    assert vulnerability((3, 4, 0)) is None and vulnerability((3, 5, 1)) is None
    problem = vulnerability((3, 2, 7))
    assert problem is not None and all(cve in problem for cve in CVES)
    assert vulnerability((3, 2, 7), "3.2.7-1+deb12u1") is None
    assert vulnerability((3, 2, 7), "3.2.7") is None
    # An acknowledgement of another build does not carry over to this one.
    assert vulnerability((3, 2, 7), "3.2.5-1") is not None
    assert not patched_matches("3.2", (3, 2, 7)) and not patched_matches("patched", (3, 2, 7))


# -- sync with a vulnerable rsync ------------------------------------------------------


def test_sync_warns_once_on_stderr_and_goes_on(tmp_path, mirror, old_rsync):
    result = run_cli("--config", str(_config(tmp_path, mirror)), "sync", environ=_env(tmp_path))
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "rsync 3.2.7 is older than 3.4.0" in warnings[0]
    assert all(cve in warnings[0] for cve in CVES)
    assert (tmp_path / "pdb" / "sifts").is_dir() and any((tmp_path / "pdb" / "sifts").iterdir())


def test_sync_json_carries_one_warning_event_first(tmp_path, mirror, old_rsync):
    config = _config(tmp_path, mirror)
    result = run_cli("--config", str(config), "sync", "--format", "json", environ=_env(tmp_path))
    assert result.code == 0, result.stderr
    assert_valid_events(result.events)  # stdout is JSON only
    warnings = [e for e in result.events if e["type"] == "warning"]
    assert result.events[0] == warnings[0] and len(warnings) == 1
    assert warnings[0]["code"] == "vulnerable_rsync" and warnings[0]["cves"] == CVES
    assert warnings[0]["rsync_version"] == "3.2.7"
    assert result.stderr.count("warning") == 1


def test_require_safe_rsync_refuses_unless_allowed(tmp_path, mirror, old_rsync):
    config = _config(tmp_path, mirror, sync="require_safe_rsync = true")
    refused = run_cli("--config", str(config), "sync", environ=_env(tmp_path))
    assert refused.code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "require_safe_rsync" in line and "--allow-vulnerable-rsync" in line and CVES[0] in line
    assert not (tmp_path / "pdb").exists()  # nothing ran
    allowed = run_cli(
        "--config", str(config), "sync", "--allow-vulnerable-rsync", environ=_env(tmp_path)
    )
    assert allowed.code == 0 and allowed.stderr.count("warning") == 1


def test_an_acknowledged_patched_build_is_not_warned_about(tmp_path, mirror, old_rsync):
    config = _config(
        tmp_path, mirror, sync='require_safe_rsync = true\nrsync_patched = "3.2.7-1+deb12u1"'
    )
    result = run_cli("--config", str(config), "sync", environ=_env(tmp_path))
    assert result.code == 0 and "warning" not in result.stderr


# -- env doctor ---------------------------------------------------------------------------


def _doctor(tmp_path: Path, config: Path, *args: str) -> tuple[int, dict[str, dict]]:
    result = run_cli(
        "--config", str(config), "env", "doctor", "--format", "json", *args, environ=_env(tmp_path)
    )
    data = orjson.loads(result.stdout)
    assert data["exit_code"] == result.code
    checks = {check["name"]: check for check in data["checks"]}
    assert set(checks["rsync"]) == {"name", "status", "reason", "fix"}
    return result.code, checks


def test_doctor_on_a_good_machine_is_all_ok(tmp_path, mirror):
    code, checks = _doctor(tmp_path, _config(tmp_path, mirror), "--min-free", "1K")
    assert code == 0, checks
    assert {name: c["status"] for name, c in checks.items()} == {
        "python": "ok",
        "packages": "ok",
        "rsync": "ok",
        "config": "ok",
        "pdb_dir": "ok",
        "free space": "ok",
        "dest sifts": "ok",
        f"mirror 127.0.0.1:{mirror.port}": "ok",
        "state dir": "ok",
    }
    assert "does not exist yet" in checks["pdb_dir"]["reason"]
    assert "pdb-sync" in checks["packages"]["reason"] and "orjson" in checks["packages"]["reason"]
    assert not (tmp_path / "state" / ".pdb-sync-doctor").exists()  # the probe file is gone


def test_doctor_fails_an_old_rsync_naming_the_cves(tmp_path, mirror, old_rsync):
    code, checks = _doctor(tmp_path, _config(tmp_path, mirror), "--min-free", "1K")
    assert code == 1
    assert checks["rsync"]["status"] == "fail"
    assert all(cve in checks["rsync"]["reason"] for cve in CVES)
    assert "rsync_patched" in checks["rsync"]["fix"]
    acknowledged = _config(tmp_path, mirror, sync='rsync_patched = "3.2.7-1+deb12u1"')
    code, checks = _doctor(tmp_path, acknowledged, "--min-free", "1K")
    assert code == 0 and "acknowledged as patched" in checks["rsync"]["reason"]


def test_doctor_warnings_fail_only_with_strict(tmp_path, mirror):
    config = _config(tmp_path, mirror, extra='[paths.data_type_dirs]\nstructures = "/x"\n')
    huge = "1000000T"  # more free space than any disk has: a warning
    code, checks = _doctor(tmp_path, config, "--min-free", huge)
    assert code == 0
    assert checks["free space"]["status"] == "warn" and checks["config keys"]["status"] == "warn"
    assert "paths.data_type_dirs" in checks["config keys"]["reason"]
    strict, _ = _doctor(tmp_path, config, "--min-free", huge, "--strict")
    assert strict == 1


def test_doctor_reports_every_problem_at_once(tmp_path, mirror):
    config = _config(
        tmp_path, mirror, extra=f'[mirrors.lab]\nurl = "rsync://127.0.0.1:{free_port()}/d/"\n'
    )
    text = config.read_text().replace('path = "sifts/"', 'mirror = "lab"\npath = "sifts/"')
    config.write_text(text + '[doctor]\nmin_free = "1K"\n')
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    result = run_cli(
        "--config",
        str(config),
        "env",
        "doctor",
        environ={"PDB_SYNC_STATE_DIR": str(blocker / "state")},
    )
    assert result.code == 1
    lines = result.text.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert any("mirror 127.0.0.1:" in line and "unreachable" in line for line in failed)
    assert any("state dir" in line for line in failed)
    assert any(line.strip().startswith("-> ") for line in lines)  # what to do
    assert lines[-1].endswith("2 failure(s)")


def test_doctor_without_a_config_fails_the_config_check(tmp_path):
    code, checks = _doctor(tmp_path, tmp_path / "missing.toml")
    assert code == 1 and checks["config"]["status"] == "fail"
    assert "config init" in checks["config"]["fix"]
