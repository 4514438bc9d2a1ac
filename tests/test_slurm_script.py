"""``slurm script`` with hostile values: every value reaches sbatch and pdb-sync as given,
none is run as a command, and what no ``#SBATCH`` line can hold is refused.

The script is run here by bash with ``sbatch`` and ``pdb-sync`` on PATH replaced by
recorders of their argv; tests/test_slurm.py submits the same kind of script to a real
Slurm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

#: Markers a hostile value would create if a shell ran it: ``hostile-N`` in the cwd.
HOSTILE_JOB_NAME = (
    "pdb $(touch hostile-1) `touch hostile-2`; touch hostile-3 \"q\" 'q' #x 50% %j a\\b/c hetjob"
)
HOSTILE_ACCOUNT = "lab $(touch hostile-4) 'x' \"y\" #z \\"
HOSTILE_PARTITION = "io $(touch hostile-5);touch hostile-6 #p"
HOSTILE_TIME = "1-00:00:00 $(touch hostile-7) #t"
HOSTILE_LOGS = "logs $(touch hostile-8) 'l' \"l\" #%A"


def sbatch_words(line: str) -> list[str]:
    """The words sbatch takes from one ``#SBATCH`` line (after the magic word), ported from
    ``_get_argument`` in Slurm's src/sbatch/opt.c: whitespace ends a word unless quoted
    (a backslash does not escape it), ``'``/``"`` group, a backslash takes the next
    character as it is, an unquoted ``#`` ends the line, an open quote is fatal."""
    words, pos = [], 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos == len(line):
            return words
        word, quote, escape = [], "", False
        while pos < len(line) and (quote or not line[pos].isspace()):
            char = line[pos]
            pos += 1
            if escape:
                escape = False
            elif char == "\\":
                escape = True
                continue
            elif quote:
                if char == quote:
                    quote = ""
                    continue
            elif char in "\"'":
                quote = char
                continue
            elif char == "#":
                pos = len(line)
                break
            word.append(char)
        assert not quote, f"sbatch: unmatched {quote} in {line!r}"
        if word:
            words.append("".join(word))


def directives(script: str) -> list[str]:
    """Every word sbatch reads from the script's ``#SBATCH`` lines, in order."""
    words = []
    for line in script.split("\n"):
        if line.startswith("#SBATCH"):
            assert "hetjob" not in line.lower() and "packjob" not in line.lower(), line
            words += sbatch_words(line[len("#SBATCH") :])
        elif line.strip() and not line.lstrip().startswith("#"):
            break  # sbatch stops at the first command
    return words


def _script(*args: str) -> str:
    made = run_cli("--config", "/etc/pdb sync/c $(touch hostile-9).toml", "slurm", "script", *args)
    assert made.code == 0, made.stderr
    return made.text


def _recorder(bin_dir: Path, name: str, log: Path) -> None:
    """An executable ``name`` that appends its argv (as JSON) to ``log``."""
    path = bin_dir / name
    path.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    path.chmod(0o755)


def _hostile_array_script() -> str:
    return _script(
        "--array",
        "2",
        "--job-name",
        HOSTILE_JOB_NAME,
        "--account",
        HOSTILE_ACCOUNT,
        "--partition",
        HOSTILE_PARTITION,
        "--time",
        HOSTILE_TIME,
        "--logs",
        HOSTILE_LOGS,
        "--sync-arg=--lock-timeout=$(touch hostile-10)",
        "mmcif",
        "a;touch hostile-11",
    )


def test_sbatch_reads_every_hostile_value_back_from_its_directive():
    words = directives(_hostile_array_script())
    files = "logs $(touch hostile-8) 'l' \"l\" #%%A/pdb $(touch hostile-1) `touch hostile-2`; "
    files += "touch hostile-3 \"q\" 'q' #x 50%% %%j a_b_c hetjob-%A_%a"
    assert words == [
        f"--job-name={HOSTILE_JOB_NAME}",
        "--array=0-1",
        f"--time={HOSTILE_TIME}",
        "--signal=B:TERM@120",
        "--cpus-per-task=4",
        f"--output={files}.out",
        f"--error={files}.err",
        f"--partition={HOSTILE_PARTITION}",
        f"--account={HOSTILE_ACCOUNT}",
    ]


def test_the_script_runs_no_hostile_value_and_passes_each_as_given(tmp_path):
    script = tmp_path / "job.sh"
    script.write_text(_hostile_array_script())
    subprocess.run(["bash", "-n", str(script)], check=True)
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    _recorder(bin_dir, "sbatch", calls)
    _recorder(bin_dir, "pdb-sync", calls)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_TASK_MIN": "0",
        "SLURM_ARRAY_JOB_ID": "77",
    }
    subprocess.run(["bash", str(script)], cwd=work, env=env, check=True)
    sbatch, sync = (json.loads(line) for line in calls.read_text().splitlines())
    logs = f"{HOSTILE_LOGS}/pdb $(touch hostile-1) `touch hostile-2`; touch hostile-3 \"q\" 'q' "
    logs += "#x 50% %j a_b_c hetjob-"
    patterns = logs.replace("%", "%%")
    assert sbatch[:-1] == [
        "--parsable",
        f"--job-name={HOSTILE_JOB_NAME}-merge",
        "--dependency=afterany:77",
        "--time=00:10:00",
        "--cpus-per-task=1",
        f"--output={patterns}77-merge.out",
        f"--error={patterns}77-merge.err",
        f"--partition={HOSTILE_PARTITION}",
        f"--account={HOSTILE_ACCOUNT}",
    ]
    config = "/etc/pdb sync/c $(touch hostile-9).toml"
    assert sync == [
        *("--config", config, "sync", "mmcif", "a;touch hostile-11"),
        *("--parallel", "4", "--retry", "3", "--format", "text"),
        *("--summary", f"{patterns}%A_%a.json", "--events", f"{patterns}%A_%a.events.jsonl"),
        "--lock-timeout=$(touch hostile-10)",
    ]
    # the merge job's script, as sbatch --wrap writes it, where the tasks' files are
    wrap = sbatch[-1]
    assert wrap.startswith("--wrap=")
    Path(work, HOSTILE_LOGS).mkdir()
    for task in (0, 1):
        Path(work, f"{logs}77_{task}.json").write_text("{}")
    Path(work, f"{logs}7_0.json").write_text("{}")  # another array's: not merged
    calls.unlink()
    subprocess.run(["sh", "-c", wrap.removeprefix("--wrap=")], cwd=work, env=env, check=True)
    [merge] = (json.loads(line) for line in calls.read_text().splitlines())
    assert merge == [
        *("--config", config, "summary", "merge", "--expect", "2"),
        *("-o", f"{logs}77.json", f"{logs}77_0.json", f"{logs}77_1.json"),
    ]
    assert not [path for path in tmp_path.rglob("hostile-*")]


@pytest.mark.parametrize(
    ("flag", "value", "what"),
    [
        ("--job-name", "pdb\ntouch hostile", "a newline"),
        ("--partition", "io\n#SBATCH --wrap=x", "a newline"),
        ("--account", "lab\rx", "the control character '\\r'"),
        ("--time", "1:00\t", "the control character '\\t'"),
        ("--logs", "logs\nx", "a newline"),
    ],
)
def test_a_value_no_sbatch_line_can_hold_is_refused_naming_its_flag(flag, value, what):
    result = run_cli("slurm", "script", "--array", "2", flag, value)
    assert (result.code, result.text) == (2, "")
    assert result.stderr == (
        f"pdb-sync: error: slurm script: {flag} {value!r}: holds {what}, which an #SBATCH "
        "line cannot carry\n"
    )


def test_a_backslash_in_logs_is_refused_it_would_turn_off_the_task_patterns():
    result = run_cli("slurm", "script", "--array", "2", "--logs", "a\\b")
    assert result.code == 2
    assert result.stderr.startswith("pdb-sync: error: slurm script: --logs 'a\\\\b': a backslash")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("flag", "value", "reason"),
    [
        # more tasks than a Slurm array can have: was written as --array=0-99999999999999999998
        ("--array", "99999999999999999999", "must be between 1 and 4000001"),
        ("--array", "4000002", "must be between 1 and 4000001"),
        # sync --parallel's own bound: the job would queue only to be refused
        ("--parallel", "101", "must be between 1 and 100"),
        # sbatch refuses --signal=B:TERM@S above 65535 (a 16-bit field)
        ("--signal-before", "65536", "must be between 0 and 65535"),
        # int() read Arabic-Indic three as 3
        ("--retry", "\u0663", "expected a whole number (digits 0-9)"),
    ],
)
def test_a_number_no_job_can_use_is_refused_naming_its_flag(flag, value, reason):
    result = run_cli("slurm", "script", "--array", "2", flag, value)
    assert (result.code, result.text) == (2, "")
    assert result.stderr.startswith(f"pdb-sync: error: slurm script: argument {flag}: {reason}"), (
        result.stderr
    )
    assert value in result.stderr and result.stderr.count("\n") == 1


def test_the_largest_array_and_signal_time_are_written_as_given():
    words = directives(_script("--array", "4000001", "--signal-before", "65535"))
    assert "--array=0-4000000" in words and "--signal=B:TERM@65535" in words
