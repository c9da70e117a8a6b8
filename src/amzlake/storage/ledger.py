"""The ledger: one row per slice, behind an interface with compare-and-set updates.

`open_ledger` picks the backend from the location, like pyiceberg's `load_catalog`: a path or
`sqlite:///path` is the embedded SQLite ledger; `dynamodb://table` is the AWS runtime's (its module
imports boto3, so only that choice loads it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from amzlake.errors import ConfigError
from amzlake.ingest.states import DONE_STATES, PENDING_STATES, FailureClass, SliceState
from amzlake.slices import Slice


@dataclass(frozen=True)
class RawObject:
    """One downloaded document in the raw zone: where, its checksum and size, and when."""

    key: str
    sha256: str
    size: int
    fetched_at: datetime
    document_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (times as ISO strings)."""
        return {"key": self.key, "sha256": self.sha256, "size": self.size,
                "fetched_at": self.fetched_at.isoformat(), "document_id": self.document_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RawObject:
        """The object `to_dict` described."""
        return cls(str(data["key"]), str(data["sha256"]), int(data["size"]),
                   datetime.fromisoformat(data["fetched_at"]), data.get("document_id"))


@dataclass(frozen=True)
class LedgerEntry:
    """A slice's row in the ledger. `version` rises by one with every change (compare-and-set)."""

    slice_key: str
    source: str
    account_id: str
    report_type: str
    report_date: date
    start: date | datetime
    end: date | datetime
    spec: dict[str, Any]
    state: SliceState
    created_at: datetime
    updated_at: datetime
    version: int = 1
    failure_class: FailureClass | None = None
    remote_report_id: str | None = None
    remote_document_id: str | None = None
    attempts: int = 0
    requested_at: datetime | None = None
    finished_at: datetime | None = None
    raw_objects: tuple[RawObject, ...] = ()
    row_count: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    note: str | None = None
    # The account's marketplace, country, currency, time zone and region when the slice was
    # planned: what the transform needs to type the rows without asking Amazon again.
    account: dict[str, str] = field(default_factory=dict)

    @property
    def end_day(self) -> date:
        """The last day the slice covers."""
        return self.end.date() if isinstance(self.end, datetime) else self.end


# The fields a slice is born with; `update` refuses to change them (they make up its identity).
IDENTITY_FIELDS = frozenset({"slice_key", "source", "account_id", "report_type", "report_date", "account",
                             "start", "end", "spec", "created_at", "version"})
UPDATABLE_FIELDS = frozenset(f.name for f in dataclasses.fields(LedgerEntry)) - IDENTITY_FIELDS


def planned_entry(slice_: Slice, now: datetime) -> LedgerEntry:
    """A new planned ledger entry for `slice_` (holds the spec, never a credential)."""
    if now.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return LedgerEntry(
        slice_key=slice_.key, source=slice_.source.value, account_id=slice_.account.account_id,
        report_type=slice_.report_type, report_date=slice_.report_date, start=slice_.start,
        end=slice_.end, spec=slice_.spec.normalised(), state=SliceState.PLANNED,
        created_at=now, updated_at=now, account=account_info(slice_),
    )


def account_info(slice_: Slice) -> dict[str, str]:
    """The account facts a ledger row keeps (never a credential)."""
    a = slice_.account
    return {"marketplace_id": a.marketplace_id, "country_code": a.country_code,
            "currency_code": a.currency_code, "timezone": a.timezone, "region": a.region}


def check_changes(entry: LedgerEntry, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes, validated: known updatable fields only, enums coerced, times aware."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"slice {entry.slice_key}: cannot update {sorted(unknown)}; "
                         f"updatable fields are {sorted(UPDATABLE_FIELDS)}")
    out = dict(changes)
    if "state" in out:
        out["state"] = SliceState(out["state"])
    if out.get("failure_class") is not None:
        out["failure_class"] = FailureClass(out["failure_class"])
    if "raw_objects" in out:
        out["raw_objects"] = tuple(out["raw_objects"])
    for name, value in out.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"slice {entry.slice_key}: {name} must be timezone-aware")
    return out


_TIME_FIELDS = frozenset({"created_at", "updated_at", "requested_at", "finished_at",
                          "next_attempt_at", "lease_until"})
FIELDS = tuple(f.name for f in dataclasses.fields(LedgerEntry))


def encode_time(value: datetime | None) -> str | None:
    """A UTC ISO timestamp of fixed width (so stores can compare them as text), or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_day(text: str) -> date | datetime:
    """A slice bound back from text: a datetime for hourly slices, else a date."""
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)


def encode_field(name: str, value: Any) -> Any:
    """A field as backends store it: text, int or None (times UTC, spec and objects JSON)."""
    if name in _TIME_FIELDS:
        return encode_time(value)
    if name in ("start", "end", "report_date"):
        return value.isoformat()  # a datetime keeps its own zone (hourly slices are UTC)
    if name in ("spec", "account"):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if name == "raw_objects":
        return orjson.dumps([o.to_dict() for o in value]).decode()
    if name in ("state", "failure_class"):
        return None if value is None else str(value.value)
    return value


def decode_entry(stored: Mapping[str, Any]) -> LedgerEntry:
    """The entry whose fields `encode_field` stored (an absent or None field is unset)."""
    def get(name: str) -> Any:
        return stored.get(name)

    def ts(name: str) -> datetime | None:
        return None if get(name) is None else datetime.fromisoformat(get(name))

    def num(name: str) -> int | None:
        return None if get(name) is None else int(get(name))  # DynamoDB answers Decimal

    return LedgerEntry(
        slice_key=get("slice_key"), source=get("source"), account_id=get("account_id"),
        report_type=get("report_type"), report_date=date.fromisoformat(get("report_date")),
        start=parse_day(get("start")), end=parse_day(get("end")),
        spec=orjson.loads(get("spec")), account=orjson.loads(get("account") or "{}"),
        state=SliceState(get("state")),
        failure_class=FailureClass(get("failure_class")) if get("failure_class") else None,
        version=int(get("version")), remote_report_id=get("remote_report_id"),
        remote_document_id=get("remote_document_id"), attempts=int(get("attempts") or 0),
        created_at=ts("created_at"), updated_at=ts("updated_at"),  # type: ignore[arg-type]
        requested_at=ts("requested_at"), finished_at=ts("finished_at"),
        raw_objects=tuple(RawObject.from_dict(o) for o in orjson.loads(get("raw_objects") or "[]")),
        row_count=num("row_count"), error=get("error"), next_attempt_at=ts("next_attempt_at"),
        lease_owner=get("lease_owner"), lease_until=ts("lease_until"), note=get("note"),
    )


@dataclass(frozen=True)
class Failure:
    """One failed slice as `amzlake status` lists it."""

    slice_key: str
    report_date: date
    failure_class: FailureClass | None
    error: str | None


@dataclass(frozen=True)
class LedgerSummary:
    """The state of one account's report type: for `amzlake status`.

    `last_complete_day` is the latest day covered by a slice that is downloaded, curated or empty;
    `complete_through` is the day before the earliest slice that is not (None when the first one
    is not), i.e. how far the data has no holes.
    """

    source: str
    account_id: str
    report_type: str
    counts: dict[str, int]
    last_complete_day: date | None
    complete_through: date | None
    pending: int
    failures: tuple[Failure, ...] = field(default=())


def summarise(entries: Iterable[LedgerEntry]) -> list[LedgerSummary]:
    """Per (source, account, report type) summaries of `entries`, sorted by those fields."""
    groups: dict[tuple[str, str, str], list[LedgerEntry]] = {}
    for e in entries:
        groups.setdefault((e.source, e.account_id, e.report_type), []).append(e)
    out: list[LedgerSummary] = []
    for (source, account_id, report_type), group in sorted(groups.items()):
        group.sort(key=lambda e: (e.report_date, e.end_day, e.slice_key))
        counts: dict[str, int] = {}
        for e in group:
            counts[e.state.value] = counts.get(e.state.value, 0) + 1
        done = [e.end_day for e in group if e.state in DONE_STATES]
        through: date | None = None
        for e in group:
            if e.state not in DONE_STATES:
                break
            through = e.end_day if through is None else max(through, e.end_day)
        out.append(LedgerSummary(
            source=source, account_id=account_id, report_type=report_type, counts=counts,
            last_complete_day=max(done) if done else None, complete_through=through,
            pending=sum(1 for e in group if e.state in PENDING_STATES),
            failures=tuple(Failure(e.slice_key, e.report_date, e.failure_class, e.error)
                           for e in group if e.state is SliceState.FAILED),
        ))
    return out


class Ledger(Protocol):
    """Where slices and their progress are kept; every change is compare-and-set on `version`."""

    def plan(self, slices: Sequence[Slice], now: datetime) -> list[LedgerEntry]:
        """Entries for `slices` in order: new keys inserted as planned, existing ones untouched."""
        ...

    def get(self, key: str) -> LedgerEntry | None:
        """The entry for slice `key`, or None."""
        ...

    def update(self, entry: LedgerEntry, changes: Mapping[str, Any]) -> LedgerEntry:
        """The entry after `changes`, if still at `entry.version` (else raises StaleEntry)."""
        ...

    def query(self, *, states: Iterable[SliceState] | None = None, source: str | None = None,
              account_id: str | None = None, report_type: str | None = None,
              since: date | None = None) -> list[LedgerEntry]:
        """Entries matching every filter (`since`: report_date on or after), by date, key."""
        ...

    def acquire(self, key: str, owner: str, now: datetime, lease: timedelta) -> LedgerEntry | None:
        """The entry leased to `owner` until now + lease; None if another holds a live lease."""
        ...

    def extend(self, key: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Move `owner`'s lease on to now + lease, keeping the entry's version (the holder's
        copy stays current); False if `owner` does not hold the lease any more."""
        ...

    def extend_all(self, keys: Sequence[str], owner: str, now: datetime, lease: timedelta
                   ) -> set[str]:
        """`extend` for many slices at once (one round trip where the backend allows it); the
        keys `owner` still holds."""
        ...

    def release(self, key: str, owner: str) -> LedgerEntry | None:
        """The entry with `owner`'s lease dropped, or None if `owner` does not hold it."""
        ...

    def summary(self) -> list[LedgerSummary]:
        """Per account and report type: last complete day, pending count, failures with reasons."""
        ...

    def close(self) -> None:
        """Release the backend's connections."""
        ...


def open_ledger(location: str | Path, **options: Any) -> Ledger:
    """The ledger at `location`: a file path or sqlite:///path (SQLite), dynamodb://table (AWS)."""
    text = str(location)
    if text.startswith("dynamodb://"):
        table = text.removeprefix("dynamodb://").strip("/")
        if not table:
            raise ConfigError(f"ledger {text!r}: dynamodb:// needs a table name (dynamodb://TABLE)")
        from amzlake.storage.dynamo_ledger import DynamoLedger  # boto3 only when chosen

        return DynamoLedger(table, **options)
    if "://" in text and not text.startswith(("sqlite://", "file://")):
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"ledger {text!r}: unknown scheme {scheme!r}; "
                          "use a file path, sqlite:///path or dynamodb://table")
    path = text
    for prefix in ("sqlite://", "file://"):
        if path.startswith(prefix):
            path = path.removeprefix(prefix)
    if not path:
        raise ConfigError(f"ledger {text!r}: no file path given")
    from amzlake.storage.sqlite_ledger import SqliteLedger

    return SqliteLedger(Path(path), **options)
