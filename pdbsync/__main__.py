from pdbsync.cli import entry

entry()
