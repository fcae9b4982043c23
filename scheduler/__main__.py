"""`python -m scheduler` is the `newsvault` command (used for child crawl processes)."""

from scheduler.cli import main

raise SystemExit(main())
