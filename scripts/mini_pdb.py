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
import random
import string
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--entries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--atoms", type=int, default=40, help="atom lines per entry")
    args = parser.parse_args()
    files = generate(args.root, args.entries, args.seed, args.atoms)
    print(f"wrote {len(files)} files under {args.root}")


if __name__ == "__main__":
    main()
