from pdbsync.cli.main import entry

entry()
