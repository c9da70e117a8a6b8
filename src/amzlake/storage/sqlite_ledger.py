"""The embedded ledger: one SQLite file (WAL), safe for several threads and processes at once.

Every change is a single `UPDATE ... WHERE slice_key = ? AND version = ?` (or a lease condition)
whose row count says whether it won, so two runs sharing the file never both work one slice.
Times are stored as UTC ISO strings of one fixed width (ledger.encode_time), so SQL compares
them as text correctly.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amzlake.errors import StaleEntry, StorageError
from amzlake.ingest.states import SliceState
from amzlake.slices import Slice
from amzlake.storage.ledger import (
    FIELDS,
    LedgerEntry,
    LedgerSummary,
    check_changes,
    decode_entry,
    encode_field,
    encode_time,
    planned_entry,
    summarise,
)

SCHEMA_VERSION = 2
# MIGRATIONS[n] takes a ledger from schema version n to n + 1; append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS slices (
        slice_key TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        account_id TEXT NOT NULL,
        report_type TEXT NOT NULL,
        report_date TEXT NOT NULL,
        start TEXT NOT NULL,
        "end" TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        failure_class TEXT,
        version INTEGER NOT NULL,
        remote_report_id TEXT,
        remote_document_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        requested_at TEXT,
        finished_at TEXT,
        raw_objects TEXT NOT NULL DEFAULT '[]',
        row_count INTEGER,
        error TEXT,
        next_attempt_at TEXT,
        lease_owner TEXT,
        lease_until TEXT,
        note TEXT
    );
    CREATE INDEX IF NOT EXISTS slices_by_state ON slices (state);
    CREATE INDEX IF NOT EXISTS slices_by_group
        ON slices (source, account_id, report_type, report_date);
    """,
    # 2: the account's marketplace, currency and time zone, for the transform.
    """
    ALTER TABLE slices ADD COLUMN account TEXT NOT NULL DEFAULT '{}';
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_COLUMNS = FIELDS
_BATCH = 500  # keys per IN (...) query, well under SQLite's variable limit


def _decode(row: sqlite3.Row) -> LedgerEntry:
    return decode_entry(dict(zip(row.keys(), row, strict=True)))


class SqliteLedger:
    """The ledger in one SQLite file; one connection, guarded by a lock, per instance."""

    def __init__(self, path: Path | str, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so each lone UPDATE is its own atomic
            # transaction and its rowcount is the compare-and-set verdict.
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"ledger {self.path}: cannot open: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        with self._errors("open"):
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed remote report id survives a power cut, not just a killed process.
            self._db.execute("PRAGMA synchronous = FULL")
            self._migrate()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SQLite errors into StorageError naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(f"ledger {self.path}: {doing} failed: {exc}") from exc

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes the write lock up front (no deadlock)."""
        with self._lock, self._errors(doing):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # some errors already rolled it back
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction("schema migration") as db:
            has_meta = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            found = 0
            if has_meta:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                found = int(row["value"]) if row else 0
            if found > SCHEMA_VERSION:
                raise StorageError(f"ledger {self.path}: schema version {found} is newer than this "
                                   f"amzlake understands ({SCHEMA_VERSION}); upgrade amzlake")
            for script in MIGRATIONS[found:]:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))

    def _fetch(self, db: sqlite3.Connection, keys: Sequence[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _BATCH):
            batch = unique[i:i + _BATCH]
            marks = ",".join("?" * len(batch))
            for row in db.execute(f"SELECT * FROM slices WHERE slice_key IN ({marks})", batch):
                found[row["slice_key"]] = _decode(row)
        return found

    def _get(self, db: sqlite3.Connection, key: str) -> LedgerEntry | None:
        row = db.execute("SELECT * FROM slices WHERE slice_key = ?", (key,)).fetchone()
        return None if row is None else _decode(row)

    # -- the Ledger interface ---------------------------------------------------------------

    def plan(self, slices: Sequence[Slice], now: datetime) -> list[LedgerEntry]:
        """Entries for `slices` in order: new keys inserted as planned, existing ones untouched."""
        names = ",".join(f'"{c}"' for c in _COLUMNS)
        marks = ",".join("?" * len(_COLUMNS))
        with self._transaction("plan") as db:
            for s in slices:
                entry = planned_entry(s, now)
                db.execute(f"INSERT OR IGNORE INTO slices ({names}) VALUES ({marks})",
                           [encode_field(c, getattr(entry, c)) for c in _COLUMNS])
            found = self._fetch(db, [s.key for s in slices])
        return [found[s.key] for s in slices]

    def get(self, key: str) -> LedgerEntry | None:
        """The entry for slice `key`, or None."""
        with self._lock, self._errors("read"):
            return self._get(self._db, key)

    def update(self, entry: LedgerEntry, changes: Mapping[str, Any]) -> LedgerEntry:
        """The entry after `changes`, if still at `entry.version` (else raises StaleEntry)."""
        values = check_changes(entry, changes)
        values.setdefault("updated_at", datetime.now(UTC))
        new = dataclasses.replace(entry, **values, version=entry.version + 1)
        sets = ", ".join(f'"{name}" = ?' for name in values)
        params = [encode_field(name, getattr(new, name)) for name in values]
        with self._lock, self._errors(f"update of slice {entry.slice_key}"):
            cur = self._db.execute(
                f"UPDATE slices SET {sets}, version = ? WHERE slice_key = ? AND version = ?",
                [*params, new.version, entry.slice_key, entry.version])
            if cur.rowcount == 1:
                return new
            current = self._get(self._db, entry.slice_key)
        if current is None:
            raise StorageError(f"ledger {self.path}: no slice {entry.slice_key} to update")
        raise StaleEntry(f"slice {entry.slice_key}: changed by someone else (read at version "
                         f"{entry.version}, now {current.version}, {current.state.value})")

    def query(self, *, states: Iterable[SliceState] | None = None, source: str | None = None,
              account_id: str | None = None, report_type: str | None = None,
              since: date | None = None) -> list[LedgerEntry]:
        """Entries matching every filter (`since`: report_date on or after), by date, key."""
        where: list[str] = []
        params: list[Any] = []
        if states is not None:
            wanted = [SliceState(s).value for s in states]
            if not wanted:
                return []
            where.append(f"state IN ({','.join('?' * len(wanted))})")
            params += wanted
        for column, value in (("source", source), ("account_id", account_id),
                              ("report_type", report_type)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if since is not None:
            where.append("report_date >= ?")
            params.append(since.isoformat())
        sql = "SELECT * FROM slices"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY report_date, slice_key"
        with self._lock, self._errors("query"):
            return [_decode(row) for row in self._db.execute(sql, params)]

    def acquire(self, key: str, owner: str, now: datetime, lease: timedelta) -> LedgerEntry | None:
        """The entry leased to `owner` until now + lease; None if another holds a live lease."""
        if not owner:
            raise ValueError("a lease needs an owner")
        until, at = encode_time(now + lease), encode_time(now)
        with self._transaction(f"lease of slice {key}") as db:
            # Bumping the version makes a former holder's in-flight update fail as stale.
            cur = db.execute(
                "UPDATE slices SET lease_owner = ?, lease_until = ?, version = version + 1 "
                "WHERE slice_key = ? AND (lease_owner IS NULL OR lease_owner = ? "
                "OR lease_until IS NULL OR lease_until <= ?)",
                (owner, until, key, owner, at))
            entry = self._get(db, key)
        if entry is None:
            raise StorageError(f"ledger {self.path}: no slice {key} to lease")
        return entry if cur.rowcount == 1 else None

    def extend(self, key: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Move `owner`'s lease on to now + lease, keeping the version; False if not held."""
        with self._transaction(f"lease of slice {key}") as db:
            cur = db.execute(
                "UPDATE slices SET lease_until = ? WHERE slice_key = ? AND lease_owner = ?",
                (encode_time(now + lease), key, owner))
        return cur.rowcount == 1

    def extend_all(self, keys: Sequence[str], owner: str, now: datetime, lease: timedelta
                   ) -> set[str]:
        """`extend` for many slices in one transaction; the keys `owner` still holds."""
        if not keys:
            return set()
        until = encode_time(now + lease)
        held: set[str] = set()
        with self._transaction("lease of slices") as db:
            for start in range(0, len(keys), 500):  # SQLite's bound on parameters per statement
                part = list(keys[start:start + 500])
                marks = ",".join("?" * len(part))
                db.execute(f"UPDATE slices SET lease_until = ? WHERE lease_owner = ? "
                           f"AND slice_key IN ({marks})", (until, owner, *part))
                held.update(row[0] for row in db.execute(
                    f"SELECT slice_key FROM slices WHERE lease_owner = ? AND slice_key IN ({marks})",
                    (owner, *part)))
        return held

    def release(self, key: str, owner: str) -> LedgerEntry | None:
        """The entry with `owner`'s lease dropped, or None if `owner` does not hold it."""
        with self._transaction(f"release of slice {key}") as db:
            cur = db.execute(
                "UPDATE slices SET lease_owner = NULL, lease_until = NULL, version = version + 1 "
                "WHERE slice_key = ? AND lease_owner = ?", (key, owner))
            entry = self._get(db, key) if cur.rowcount == 1 else None
        return entry

    def summary(self) -> list[LedgerSummary]:
        """Per account and report type: last complete day, pending count, failures with reasons."""
        return summarise(self.query())

    def close(self) -> None:
        """Close the connection (the file stays)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"
