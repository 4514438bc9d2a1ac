"""A run's summary in the formats CI systems and monitors read: JUnit XML, Markdown,
Prometheus text; and reading a summary file back (``pdb-sync summary show``).

Every function here takes the summary's dict (``Summary.to_dict()``, or a plan's
``PlanSummary.to_dict()``), so ``sync --junit`` and ``summary show FILE --format junit``
produce the same bytes from the same data. Writing is pdbsync.outputs' job.
"""

from __future__ import annotations

import re
import socket
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

import orjson

from pdbsync import contracts
from pdbsync.errors import UsageError
from pdbsync.report.render import Relay, Renderer, plan_table, summary_block
from pdbsync.units import human_bytes, junit_seconds, seconds_text

if TYPE_CHECKING:
    from pdbsync.messages import OutputLines

#: The classname of every JUnit testcase: CI systems group testcases by it.
JUNIT_CLASSNAME = "pdb-sync"
#: How many of a target's last stderr lines a JUnit failure carries.
STDERR_LINES = 20
#: What ``summary show --format`` offers (kept in pdbsync.cli.status, which must not
#: import this module just to build its parser).
FORMATS = ("text", "json", "markdown", "junit", "prometheus", "html")


def is_plan(data: Mapping[str, Any]) -> bool:
    return data.get("kind") == "plan"


def load_summary(path: Path, label: str) -> dict[str, Any]:
    """Read and validate a ``--summary`` file (sync or plan); UsageError naming ``label``.

    Validation against the schema it claims to follow means every format below can
    index the data without guarding each key.
    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{label}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{label}: not a pdb-sync summary (a JSON object is expected)")
    schema = "plan" if is_plan(data) else "summary"
    found = contracts.problems(data, schema)
    if found:
        raise UsageError(
            f"{label}: not a valid pdb-sync {schema} (schemas/{schema}.schema.json): {found[0]}"
        )
    bad = _bad_stamp(data)
    if bad:
        raise UsageError(f"{label}: not a valid pdb-sync {schema}: {bad}")
    return data


def _bad_stamp(data: Any, where: str = "") -> str | None:
    """The first ``started_at``/``finished_at`` that the schema's pattern lets through
    but is no time (``2026-13-45T...``, other scripts' digits), said with its path:
    merging and the metrics compute with them."""
    from pdbsync.times import parse_utc

    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        path = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
        if key in ("started_at", "finished_at") and isinstance(value, str):
            try:
                parse_utc(value)
            except ValueError as exc:
                return f"{path.lstrip('.')}: {exc}"
        elif isinstance(value, dict | list):
            found = _bad_stamp(value, path)
            if found:
                return found
    return None


def text(data: Mapping[str, Any]) -> str:
    """The block text mode prints at the end of the run."""
    return plan_table(data) if is_plan(data) else summary_block(data)


# -- JUnit XML ---------------------------------------------------------------------------


def _targets(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return data["targets"] if is_plan(data) else data["results"]


def _why(target: Mapping[str, Any]) -> str:
    code = target["exit_code"]
    meaning = f"exit {code} ({target['exit_meaning']})" if code is not None else ""
    return ": ".join(part for part in (meaning, target["error"]) if part) or target["status"]


def junit_xml(data: Mapping[str, Any], stderr: Mapping[str, Sequence[str]] | None = None) -> bytes:
    """One ``<testcase>`` per target (classname ``pdb-sync``, time = its duration):
    ``<failure>`` for a failed target, ``<error>`` for a cancelled one (the run was
    stopped, the target did not fail), ``<skipped>`` for a skipped one. ``stderr``: the
    last lines rsync wrote to stderr per target, when the caller saw them (a live run);
    a summary file has only each target's ``error`` line.

    Built with xml.etree, which escapes what rsync prints (``<``, ``&``, control bytes
    are not valid XML 1.0 and are replaced); checked against the Jenkins JUnit XSD in
    the tests.
    """
    stderr = stderr or {}
    targets = _targets(data)
    kind = "plan" if is_plan(data) else "sync"
    failures = sum(1 for t in targets if t["status"] == "failed")
    errors = sum(1 for t in targets if t["status"] == "cancelled")
    skipped = sum(1 for t in targets if t["status"] == "skipped")
    total_s = junit_seconds(data["timings"]["total_s"])
    root = ElementTree.Element(
        "testsuites",
        name="pdb-sync",
        tests=str(len(targets)),
        failures=str(failures),
        errors=str(errors),
        time=total_s,
    )
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        name=f"pdb-sync {kind}",
        tests=str(len(targets)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=total_s,
        timestamp=data["started_at"],
        hostname=socket.gethostname(),
    )
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (
        ("pdb_sync_version", data["version"]),
        ("exit_code", data["exit_code"]),
        ("interrupted", data["interrupted"] or ""),
    ):
        ElementTree.SubElement(properties, "property", name=name, value=_xml_text(str(value)))
    for target in targets:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            name=_xml_text(target["name"]),
            classname=JUNIT_CLASSNAME,
            time=junit_seconds(target["duration_s"]),
        )
        lines = list(stderr.get(target["name"], ()))
        status = target["status"]
        if status in ("failed", "cancelled"):
            element = ElementTree.SubElement(
                case,
                "failure" if status == "failed" else "error",
                type=status if target["exit_code"] is None else f"rsync exit {target['exit_code']}",
                message=_xml_text(_why(target)),
            )
            detail = [f"url: {target['url']}", f"dest: {target['dest']}", _why(target)]
            if lines:
                detail += ["", f"last {len(lines)} lines of rsync's stderr:", *lines]
            element.text = _xml_text("\n".join(detail))
        elif status == "skipped":
            ElementTree.SubElement(case, "skipped", message=_xml_text(_why(target)))
        if lines:
            ElementTree.SubElement(case, "system-err").text = _xml_text("\n".join(lines))
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _xml_text(value: str) -> str:
    """XML 1.0 cannot carry most control characters (nor lone surrogates, nor U+FFFE and
    U+FFFF), even escaped: replace them. Every string of the summary goes through here."""
    return _NOT_XML.sub("\ufffd", value)


#: What XML 1.0's ``Char`` production leaves out.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class StderrTail(Relay):
    """A renderer in front of another that remembers each target's last stderr lines
    (for :func:`junit_xml`); everything is passed on unchanged.

    Only put in place when ``--junit`` asks for it, so an ordinary run pays nothing.
    """

    def __init__(self, inner: Renderer, lines: int = STDERR_LINES) -> None:
        super().__init__(inner)
        self.size = lines
        self.lines: dict[str, deque[str]] = {}

    def event(self, event: dict[str, Any]) -> None:
        if event["type"] == "output" and event.get("stream") == "stderr" and event["line"].strip():
            tail = self.lines.get(event["name"])
            if tail is None:
                tail = self.lines[event["name"]] = deque(maxlen=self.size)
            tail.append(event["line"])
        self.inner.event(event)

    def output_lines(self, lines: OutputLines) -> None:
        said = [line for line in lines.lines if line.strip()] if lines.stream == "stderr" else []
        if said:
            tail = self.lines.get(lines.name)
            if tail is None:
                tail = self.lines[lines.name] = deque(maxlen=self.size)
            tail.extend(said)
        self.inner.output_lines(lines)

    def tails(self) -> dict[str, list[str]]:
        return {name: list(tail) for name, tail in self.lines.items()}


# -- Markdown ----------------------------------------------------------------------------


#: Line breaks (CRLF as one) and every other control character: a space in a table cell.
_NOT_IN_CELL = re.compile("\r\n|[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _cell(value: Any) -> str:
    """A table cell: pipes escaped, line breaks (``\\n``, ``\\r``, CRLF) and other
    control characters made spaces, so one row stays one line."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return _NOT_IN_CELL.sub(" ", text)


def _table(header: Sequence[str], align: str, rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def markdown(data: Mapping[str, Any]) -> str:
    """A heading, a table per target and the totals: for ``$GITHUB_STEP_SUMMARY`` and
    merge-request comments (GitHub-flavoured Markdown, no HTML)."""
    if is_plan(data):
        return _plan_markdown(data)
    totals = data["totals"]
    verdict = "all succeeded" if data["exit_code"] == 0 else f"exit {data['exit_code']}"
    lines = [
        f"### pdb-sync sync: {totals['succeeded']}/{totals['total']} succeeded ({verdict})",
        "",
    ]
    rows = []
    for result in data["results"]:
        status = result["status"] if result["status"] == "success" else f"**{result['status']}**"
        detail = "" if result["status"] == "success" else _why(result)
        rows.append(
            (
                result["name"],
                status,
                seconds_text(result["duration_s"], 1, " s"),
                f"{result['files_transferred'] or 0:,}",
                human_bytes(result["bytes_transferred"]),
                detail,
            )
        )
    header = ("target", "status", "duration", "files", "transferred", "details")
    lines += _table(header, "llrrrl", rows)
    lines += [
        "",
        f"Transferred {totals['files_transferred']:,} files, "
        f"{human_bytes(totals['bytes_transferred'])}; created {totals['files_created']:,}, "
        f"deleted {totals['files_deleted']:,}; "
        f"{seconds_text(data['timings']['total_s'], 1, ' s')} in total"
        + (f"; interrupted by {data['interrupted']}" if data["interrupted"] else "")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _plan_markdown(data: Mapping[str, Any]) -> str:
    totals = data["totals"]
    lines = [
        f"### pdb-sync plan: {totals['planned']}/{totals['targets']} planned "
        "(dry run, nothing changed)",
        "",
    ]
    rows = []
    for target in data["targets"]:
        if target["files_total"] is None:
            rows.append((target["name"], f"**{target['status']}**", "", "", "", "", _why(target)))
            continue
        delete = f"{target['to_delete']:,}" if target["delete_enabled"] else "off"
        rows.append(
            (
                target["name"],
                "planned",
                f"{target['to_create']:,}",
                f"{target['to_update']:,}",
                f"**{delete}**" if target["to_delete"] else delete,
                human_bytes(target["bytes_to_transfer"]),
                "",
            )
        )
    header = ("target", "status", "create", "update", "delete", "transfer", "details")
    lines += _table(header, "llrrrrl", rows)
    if totals["to_delete"]:
        names = ", ".join(totals["targets_deleting"])
        lines += ["", f"**Will delete {totals['to_delete']:,} files** ({names})."]
    return "\n".join(lines) + "\n"


# -- Prometheus --------------------------------------------------------------------------


def _timestamp(stamp: str | None) -> float | None:
    if not stamp:
        return None
    from pdbsync.times import parse_utc

    return parse_utc(stamp).timestamp()


def prometheus_text(
    data: Mapping[str, Any], states: Mapping[str, Mapping[str, Any]] | None = None
) -> bytes:
    """The run in Prometheus' text format, for node_exporter's textfile collector.

    Built by prometheus-client (HELP and TYPE lines, label escaping) but not written by
    it: its ``write_to_textfile`` renames a temp file over the path, which would turn a
    symlink or a FIFO into a regular file; pdbsync.outputs writes it instead (atomically
    for a regular file). ``states``: pdbsync.store.history's per-target index after this run;
    with it the last success of a target that failed now is still known, and
    ``pdb_sync_bytes_transferred_total`` is a real counter (every recorded run), else
    both come from this summary alone.
    """
    if is_plan(data):
        raise UsageError("a plan has no Prometheus metrics (it changes nothing); give a sync")
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    states = states or {}
    last_success = GaugeMetricFamily(
        "pdb_sync_last_success_timestamp_seconds",
        "When the target's last successful sync finished (Unix time).",
        labels=["target"],
    )
    duration = GaugeMetricFamily(
        "pdb_sync_target_duration_seconds",
        "How long the target's rsync took in this run (all attempts).",
        labels=["target"],
    )
    transferred = CounterMetricFamily(
        "pdb_sync_bytes_transferred",
        "Bytes of file data rsync transferred for the target (over all recorded runs).",
        labels=["target"],
    )
    files = GaugeMetricFamily(
        "pdb_sync_files_transferred",
        "Files rsync transferred for the target in this run.",
        labels=["target"],
    )
    status = GaugeMetricFamily(
        "pdb_sync_target_status",
        "1 for the target's status in this run (success, failed, cancelled, skipped).",
        labels=["target", "status"],
    )
    exit_code = GaugeMetricFamily(
        "pdb_sync_run_exit_code", "pdb-sync's exit status of this run (0: all succeeded)."
    )
    finished = GaugeMetricFamily(
        "pdb_sync_run_finished_timestamp_seconds", "When this run finished (Unix time)."
    )
    for result in data["results"]:
        name = result["name"]
        state = states.get(name, {})
        success = state.get("last_success") or (result if result["status"] == "success" else None)
        stamp = _timestamp(success["finished_at"]) if success else None
        if stamp is not None:
            last_success.add_metric([name], stamp)
        duration.add_metric([name], result["duration_s"] or 0.0)
        total = state.get("bytes_transferred_total")
        transferred.add_metric(
            [name], float(total if total is not None else result["bytes_transferred"] or 0)
        )
        files.add_metric([name], float(result["files_transferred"] or 0))
        for value in ("success", "failed", "cancelled", "skipped"):
            status.add_metric([name, value], 1.0 if result["status"] == value else 0.0)
    exit_code.add_metric([], float(data["exit_code"]))
    finished.add_metric([], _timestamp(data["finished_at"]) or 0.0)
    families = [last_success, duration, transferred, files, status, exit_code, finished]

    class _Run:
        def collect(self):
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Run())
    return generate_latest(registry)


def render(
    data: Mapping[str, Any], output_format: str, states: Mapping[str, Any] | None = None
) -> bytes:
    """``data`` in ``output_format`` (one of :data:`FORMATS`), as bytes to print or write."""
    if output_format == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
    if output_format == "junit":
        return junit_xml(data)
    if output_format == "markdown":
        return markdown(data).encode()
    if output_format == "prometheus":
        return prometheus_text(data, states)
    if output_format == "html":
        from pdbsync.report.html import report_html

        return report_html(data).encode()
    return text(data).lstrip("\n").encode()
