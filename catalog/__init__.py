"""The catalog: what the archive holds, indexed to be read (versions, diffs, threads, changes, search, exports).

The archive is the record; the catalog is a cache of it. It is updated as
snapshots commit (the archive's ``on_committed`` hook calls
``catalog.ingest.ingest_from_dir`` for each one, after a crawl or a push) and can be rebuilt from the archive alone (:func:`rebuild`), giving
the same answers: every answer is derived from the snapshots' items and
manifests, ordered by values in them, never by when a row was written.

- ``catalog.db``: the SQLite file, its schema and its archive;
- ``catalog.ingest``: one committed snapshot into the catalog; rebuild and sync;
- ``catalog.query``: history, versions, threads, changes, search;
- ``catalog.diff``: field and body diffs between versions, substantive or minor;
- ``catalog.export``: JSON Lines, CSV, Parquet and WACZ.
"""
