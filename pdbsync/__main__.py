from pdbsync.cli import main

raise SystemExit(main())
