"""What one crawl has seen so far, kept on disk so memory stays flat as a crawl grows.

The dedupe pipeline needs, for every item of the run: its key (canonical URL
or thread), its content hash and, for articles, a MinHash sketch and its LSH
band keys. In memory that is a few KiB per article (about 2 KiB for the LSH
tables alone), which at 100,000 articles outgrows the rest of the crawl, so
it lives in a throwaway SQLite file instead and is deleted when the run ends.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import weakref
from pathlib import Path

import numpy as np

from pipelines.minhash import similarity as sketch_similarity

_SCHEMA = """
CREATE TABLE keys (kind TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE TABLE hashes (digest TEXT PRIMARY KEY, url TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sketches (id INTEGER PRIMARY KEY, url TEXT NOT NULL, hashvalues BLOB NOT NULL);
CREATE TABLE bands (band BLOB NOT NULL, sketch INTEGER NOT NULL);
CREATE INDEX bands_by_key ON bands (band);
"""


class RunIndex:
    """Seen keys, content hashes and MinHash LSH bands of one run, in a temporary SQLite file."""

    def __init__(self, *, bands: int, rows: int, directory: str | Path | None = None) -> None:
        self.bands = bands
        self.rows = rows
        fd, name = tempfile.mkstemp(prefix="newsvault-run-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self.path = Path(name)
        # A scratch file: losing it in a crash loses nothing, so skip the journal.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")
        # The file goes even if close() is never called (a unit test, a crash in a pipeline).
        self._cleanup = weakref.finalize(self, _remove, self._db, self.path)

    def add_key(self, kind: str, key: str) -> bool:
        """Remember ``key``; False when this run has seen it already."""
        cursor = self._db.execute("INSERT OR IGNORE INTO keys VALUES (?, ?)", (kind, key))
        return cursor.rowcount == 1

    def url_with_digest(self, digest: str) -> str | None:
        row = self._db.execute("SELECT url FROM hashes WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def add_digest(self, digest: str, url: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO hashes VALUES (?, ?)", (digest, url))

    def _band_keys(self, hashvalues: np.ndarray) -> list[bytes]:
        # The band number is part of the key: equal rows in different bands mean nothing.
        return [
            hashlib.blake2b(
                hashvalues[i * self.rows : (i + 1) * self.rows].tobytes(), digest_size=12, person=bytes([i])
            ).digest()
            for i in range(self.bands)
        ]

    def nearest(self, hashvalues: np.ndarray, threshold: float) -> str | None:
        """The most similar earlier sketch at or above ``threshold`` among the LSH candidates."""
        keys = self._band_keys(hashvalues)
        placeholders = ",".join("?" * len(keys))
        rows = self._db.execute(
            f"SELECT DISTINCT s.id, s.url, s.hashvalues FROM bands b JOIN sketches s ON s.id = b.sketch "
            f"WHERE b.band IN ({placeholders}) ORDER BY s.id",
            keys,
        ).fetchall()
        best: tuple[float, str] | None = None
        for _, url, blob in rows:
            similarity = sketch_similarity(np.frombuffer(blob, dtype=hashvalues.dtype), hashvalues)
            if similarity >= threshold and (best is None or similarity > best[0]):
                best = (similarity, url)
        return best[1] if best else None

    def add_sketch(self, url: str, hashvalues: np.ndarray) -> None:
        cursor = self._db.execute("INSERT INTO sketches (url, hashvalues) VALUES (?, ?)", (url, hashvalues.tobytes()))
        self._db.executemany(
            "INSERT INTO bands VALUES (?, ?)", [(key, cursor.lastrowid) for key in self._band_keys(hashvalues)]
        )

    def close(self) -> None:
        self._cleanup()


def _remove(db: sqlite3.Connection, path: Path) -> None:
    db.close()
    path.unlink(missing_ok=True)
