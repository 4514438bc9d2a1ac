"""pdb-sync: keep a local Protein Data Bank mirror in sync with parallel rsync transfers."""

__version__ = "0.1.0"
