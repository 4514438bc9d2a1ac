"""Generate a small archive in the wwPDB layout, for the demo, the tests and the benchmark.

    python scripts/mini_pdb.py DIR [--entries N] [--seed S]

Entry ids look like real ones (a digit and three letters/digits); files go where the
wwPDB puts them: ``structures/divided/mmCIF/{ab}/{id}.cif.gz`` with ``ab`` the middle
two characters of the id, plus ``structures/divided/pdb``, ``assemblies/mmCIF/divided``,
``sifts`` and ``emdb``. Content is deterministic for a given seed, so two trees made
with the same arguments are byte-identical.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import string
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

_ALNUM = string.ascii_lowercase + string.digits


def entry_ids(count: int, seed: int = 1) -> list[str]:
    """``count`` distinct, sorted, PDB-style ids (e.g. ``1abc``)."""
    rng = random.Random(seed)
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(rng.choice("123456789") + "".join(rng.choice(_ALNUM) for _ in range(3)))
    return sorted(ids)


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def _mmcif(entry: str, rng: random.Random, atoms: int) -> str:
    lines = [f"data_{entry.upper()}", f"_entry.id {entry.upper()}", "loop_", "_atom_site.id"]
    lines += [
        f"ATOM {i} C CA . ALA A 1 {i} ? {rng.uniform(-50, 50):.3f} "
        f"{rng.uniform(-50, 50):.3f} {rng.uniform(-50, 50):.3f} 1.00 {rng.uniform(5, 80):.2f}"
        for i in range(1, atoms + 1)
    ]
    return "\n".join(lines) + "\n"


def generate(root: Path, entries: int = 60, seed: int = 1, atoms: int = 40) -> list[Path]:
    """Write the archive under ``root``; return every file written (sorted)."""
    rng = random.Random(seed)
    root = Path(root)
    written = []

    def put(relative: str, data: bytes) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    for entry in entry_ids(entries, seed):
        ab = entry[1:3]
        cif = _mmcif(entry, rng, atoms)
        put(f"structures/divided/mmCIF/{ab}/{entry}.cif.gz", _gz(cif))
        put(f"structures/divided/pdb/{ab}/pdb{entry}.ent.gz", _gz(cif.replace("ATOM", "HETATM")))
        put(f"assemblies/mmCIF/divided/{ab}/{entry}-assembly1.cif.gz", _gz(cif))
        put(f"sifts/xml/{ab}/{entry}.xml.gz", _gz(f"<entry dbAccessionId='{entry}'/>\n"))
    for number in range(1, max(2, entries // 10) + 1):
        emd = f"EMD-{1000 + number}"
        put(f"emdb/structures/{emd}/header/{emd.lower()}.xml", f"<emd id='{emd}'/>\n".encode())
    return sorted(written)


def generate_divided(root: Path, entries: int, seed: int = 1, atoms: int = 20) -> int:
    """Only ``structures/divided/mmCIF/{ab}/{id}.cif.gz`` under ``root``, for trees at
    the scale of the real archive (250,000 entries in its 1,296 hash directories): one
    file per entry, written without keeping a list. Returns how many files it wrote."""
    rng = random.Random(seed)
    base = Path(root) / "structures" / "divided" / "mmCIF"
    made: set[str] = set()
    count = 0
    for entry in entry_ids(entries, seed):
        ab = entry[1:3]
        if ab not in made:
            (base / ab).mkdir(parents=True, exist_ok=True)
            made.add(ab)
        (base / ab / f"{entry}.cif.gz").write_bytes(_gz(_mmcif(entry, rng, atoms)))
        count += 1
    return count


# -- weeks: a tree in every wwPDB layout, and the weekly releases that change it ----------

#: The first week of a weekly archive (a Wednesday, like the wwPDB's releases).
FIRST_WEEK = date(2026, 11, 4)
#: Written here independently of pdbsync.weekly.layouts, so the tests compare pdb-sync's
#: id -> file rules against a second statement of them: (data-type path, file names).
WEEK_LAYOUTS = {
    "mmcif": "structures/divided/mmCIF",
    "pdb": "structures/divided/pdb",
    "xml": "structures/divided/XML",
    "xml-noatom": "structures/divided/XML-noatom",
    "xml-extatom": "structures/divided/XML-extatom",
    "structure-factors": "structures/divided/structure_factors",
    "nmr-data": "structures/divided/nmr_data",
    "assemblies": "assemblies/mmCIF/divided",
}


def _entry_files(entry: str, version: int) -> dict[str, bytes]:
    """Every file of ``entry`` at ``version``, path under the data root -> bytes.

    Like the archive: not every entry has every type (large ones no PDB format file,
    only some structure factors or NMR data), and the number of assemblies changes
    with a revision.
    """
    salt = zlib.crc32(entry.encode())
    rng = random.Random(salt * 1000 + version)
    ab = entry[1:3]
    cif = _mmcif(entry, rng, 8).replace(
        "loop_", f"_pdbx_audit_revision_history.ordinal {version}\nloop_"
    )
    files = {
        f"structures/divided/mmCIF/{ab}/{entry}.cif.gz": _gz(cif),
        f"structures/divided/XML/{ab}/{entry}.xml.gz": _gz(f"<e id='{entry}' v='{version}'/>\n"),
        f"structures/divided/XML-noatom/{ab}/{entry}-noatom.xml.gz": _gz(f"<e id='{entry}'/>\n"),
        f"structures/divided/XML-extatom/{ab}/{entry}-extatom.xml.gz": _gz(cif[:200]),
    }
    if salt % 5:
        files[f"structures/divided/pdb/{ab}/pdb{entry}.ent.gz"] = _gz(cif.replace("ATOM", "HETATM"))
    if salt % 3:
        files[f"structures/divided/structure_factors/{ab}/r{entry}sf.ent.gz"] = _gz(
            f"sf {entry} {version}\n"
        )
    if salt % 4 == 0:
        files[f"structures/divided/nmr_data/{ab}/{entry}_nmr-data.nef.gz"] = _gz(f"nef {entry}\n")
        if version % 2:
            files[f"structures/divided/nmr_data/{ab}/{entry}_nmr-data.str.gz"] = _gz(
                f"str {entry}\n"
            )
    for number in range(1, 2 + (salt + version) % 3):
        files[f"assemblies/mmCIF/divided/{ab}/{entry}-assembly{number}.cif.gz"] = _gz(
            f"{cif[:120]}assembly {number}\n"
        )
    return files


def _stamp(week: date) -> float:
    return datetime(week.year, week.month, week.day, 3, tzinfo=UTC).timestamp()


def _write_entry(root: Path, entry: str, version: int, week: date) -> None:
    _remove_entry(root, entry)
    for relative, data in _entry_files(entry, version).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (_stamp(week), _stamp(week)))


def _remove_entry(root: Path, entry: str) -> None:
    """Every file of ``entry`` gone, and a hash directory left empty with it."""
    for layout in WEEK_LAYOUTS.values():
        folder = root / layout / entry[1:3]
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            if name.startswith((entry, f"pdb{entry}.", f"r{entry}sf.")):
                path.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def _version(root: Path, entry: str) -> int | None:
    path = root / WEEK_LAYOUTS["mmcif"] / entry[1:3] / f"{entry}.cif.gz"
    if not path.is_file():
        return None
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        if line.startswith("_pdbx_audit_revision_history.ordinal"):
            return int(line.split()[1])
    return 1


def current_entries(root: Path) -> list[str]:
    """The ids a weekly archive holds now (those with an mmCIF file)."""
    base = Path(root) / WEEK_LAYOUTS["mmcif"]
    if not base.is_dir():
        return []
    return sorted(p.name[:4] for d in base.iterdir() for p in d.iterdir())


def weeks_written(root: Path) -> list[str]:
    status = Path(root) / "status"
    return sorted(p.name for p in status.iterdir() if p.name.isdigit()) if status.is_dir() else []


def _write_lists(root: Path, name: str, lists: dict[str, list[str]], noise: bool) -> None:
    for folder in (root / "status" / name, root / "status" / "latest"):
        folder.mkdir(parents=True, exist_ok=True)
        for kind, ids in lists.items():
            lines = [*ids]
            if noise and lines:  # what hand-made lists hold: blank lines, capitals, spaces
                lines = ["", lines[0].upper(), "", *(f"  {i} " for i in lines[1:]), ""]
            (folder / f"{kind}.pdb").write_text("\n".join(lines) + ("\n" if lines else ""))


def generate_weekly(root: Path, entries: int = 40, seed: int = 7) -> list[str]:
    """A data root (``root``) with ``entries`` entries in every layout of WEEK_LAYOUTS and
    the first week's status lists (its added list names them all). Returns the ids."""
    root = Path(root)
    ids = entry_ids(entries, seed)
    for entry in ids:
        _write_entry(root, entry, 1, FIRST_WEEK)
    _write_lists(
        root, FIRST_WEEK.strftime("%Y%m%d"), {"added": ids, "modified": [], "obsolete": []}, False
    )
    return ids


def advance_week(
    root: Path,
    *,
    added: int = 3,
    modified: int = 3,
    obsolete: int = 2,
    seed: int = 0,
    add: tuple[str, ...] = (),
    modify: tuple[str, ...] = (),
    make_obsolete: tuple[str, ...] = (),
    write_folder: bool = True,
    noise: bool = False,
) -> dict[str, list[str]]:
    """One weekly release: add, modify and obsolete entries (``added`` etc. chosen at
    random by ``seed``, plus the ids given), dated a week after the newest release, and
    write ``status/YYYYMMDD/`` (unless ``write_folder`` is False: a mirror that lost that
    week) and ``status/latest/``. ``noise``: blank lines and capitals in the lists.
    Returns the lists, with the week's name under ``"week"``."""
    root = Path(root)
    done = weeks_written(root)
    latest = root / "status" / "latest" / "week"
    newest = max([*done, *([latest.read_text().strip()] if latest.is_file() else [])])
    week = datetime.strptime(newest, "%Y%m%d").date() + timedelta(days=7)
    rng = random.Random(seed or week.toordinal())
    present = current_entries(root)
    keep = [e for e in present if e not in make_obsolete and e not in modify]
    gone = list(make_obsolete) + rng.sample(keep, min(obsolete, len(keep)))
    keep = [e for e in keep if e not in gone]
    changed = list(modify) + rng.sample(keep, min(modified, len(keep)))
    new = list(add)
    while len(new) < len(add) + added:
        candidate = rng.choice("123456789") + "".join(rng.choice(_ALNUM) for _ in range(3))
        if candidate not in present and candidate not in new:
            new.append(candidate)
    for entry in new:
        _write_entry(root, entry, 1, week)
    for entry in changed:
        _write_entry(root, entry, (_version(root, entry) or 1) + 1, week)
    for entry in gone:
        _remove_entry(root, entry)
    lists = {"added": new, "modified": changed, "obsolete": gone}
    name = week.strftime("%Y%m%d")
    if write_folder:
        _write_lists(root, name, lists, noise)
    else:
        (root / "status" / "latest").mkdir(parents=True, exist_ok=True)
    latest.write_text(name + "\n")
    return {**lists, "week": [name]}


def advance_divided(
    root: Path,
    entries: int,
    week: str,
    *,
    added: int,
    modified: int,
    obsolete: int,
    seed: int = 1,
    atoms: int = 20,
) -> dict[str, list[str]]:
    """One weekly release of a :func:`generate_divided` tree (``entries`` of ``seed``):
    ``added`` new entries, ``modified`` rewritten ones, ``obsolete`` removed, and
    ``status/{week}/`` with the lists (for the PDB-scale benchmark of weekly updates)."""
    root = Path(root)
    base = root / "structures" / "divided" / "mmCIF"
    ids = entry_ids(entries, seed)
    rng = random.Random(seed * 7919 + int(week))
    chosen = rng.sample(ids, modified + obsolete)
    changed, gone = chosen[:modified], chosen[modified:]
    present = set(ids)
    new: list[str] = []
    while len(new) < added:
        candidate = rng.choice("123456789") + "".join(rng.choice(_ALNUM) for _ in range(3))
        if candidate not in present:
            present.add(candidate)
            new.append(candidate)
    stamp = _stamp(datetime.strptime(week, "%Y%m%d").date())
    for entry in [*new, *changed]:
        path = base / entry[1:3] / f"{entry}.cif.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_gz(_mmcif(entry, rng, atoms + 1)))
        os.utime(path, (stamp, stamp))
    for entry in gone:
        (base / entry[1:3] / f"{entry}.cif.gz").unlink()
    lists = {"added": new, "modified": changed, "obsolete": gone}
    _write_lists(root, week, lists, False)
    return lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--entries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--atoms", type=int, default=40, help="atom lines per entry")
    parser.add_argument(
        "--weekly",
        action="store_true",
        help="a data root in every layout a weekly update knows, with its first status lists",
    )
    parser.add_argument(
        "--advance", action="store_true", help="add one weekly release to a --weekly tree"
    )
    args = parser.parse_args()
    if args.advance:
        lists = advance_week(args.root, seed=args.seed)
        print(
            f"week {lists['week'][0]}: added {len(lists['added'])}, modified "
            f"{len(lists['modified'])}, obsolete {len(lists['obsolete'])} under {args.root}"
        )
        return
    if args.weekly:
        ids = generate_weekly(args.root, args.entries, args.seed)
        print(f"wrote {len(ids)} entries in {len(WEEK_LAYOUTS)} layouts under {args.root}")
        return
    files = generate(args.root, args.entries, args.seed, args.atoms)
    print(f"wrote {len(files)} files under {args.root}")


if __name__ == "__main__":
    main()
