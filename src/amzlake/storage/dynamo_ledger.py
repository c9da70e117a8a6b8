"""The AWS runtime's ledger: one DynamoDB item per slice, every change a conditional write.

Compare-and-set is `UpdateItem` with `ConditionExpression: version = :seen`; a lease is an update
conditioned on the lease being free, ours or expired (DynamoDB condition expressions, "Condition
expressions", Amazon DynamoDB developer guide). A None field is REMOVEd rather than stored, so
`attribute_not_exists` means "not set". Only this module imports boto3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

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

_BATCH = 100  # BatchGetItem's limit


def _failed_condition(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _item(entry: LedgerEntry) -> dict[str, Any]:
    item = {name: encode_field(name, getattr(entry, name)) for name in FIELDS}
    return {k: v for k, v in item.items() if v is not None}


class DynamoLedger:
    """The ledger in one DynamoDB table keyed by `slice_key` (created on first use if missing)."""

    def __init__(self, table: str, *, endpoint_url: str | None = None,
                 region_name: str | None = None, create_missing: bool = True) -> None:
        self.table = table
        self._table = boto3.resource("dynamodb", endpoint_url=endpoint_url,
                                     region_name=region_name).Table(table)
        self._db = self._table.meta.client
        if create_missing:
            self._create_if_missing()

    def _error(self, doing: str, exc: Exception) -> StorageError:
        return StorageError(f"ledger dynamodb://{self.table}: {doing} failed: {exc}")

    def _create_if_missing(self) -> None:
        try:
            self._db.describe_table(TableName=self.table)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise self._error("describe table", exc) from exc
        try:
            self._db.create_table(
                TableName=self.table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "slice_key", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "slice_key", "KeyType": "HASH"}])
            self._db.get_waiter("table_exists").wait(TableName=self.table)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise self._error("create table", exc) from exc

    def _get(self, key: str) -> LedgerEntry | None:
        try:
            item = self._table.get_item(Key={"slice_key": key}, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"read of slice {key}", exc) from exc
        return None if item is None else decode_entry(item)

    def plan(self, slices: Sequence[Slice], now: datetime) -> list[LedgerEntry]:
        """Entries for `slices` in order: new keys inserted as planned, existing ones untouched."""
        for s in dict((s.key, s) for s in slices).values():
            try:
                self._table.put_item(Item=_item(planned_entry(s, now)),
                                     ConditionExpression="attribute_not_exists(slice_key)")
            except ClientError as exc:
                if not _failed_condition(exc):
                    raise self._error(f"plan of slice {s.key}", exc) from exc
        found: dict[str, LedgerEntry] = {}
        keys = list(dict.fromkeys(s.key for s in slices))
        for i in range(0, len(keys), _BATCH):
            request: dict[str, Any] = {self.table: {
                "Keys": [{"slice_key": k} for k in keys[i:i + _BATCH]], "ConsistentRead": True}}
            while request:
                try:
                    r = self._table.meta.client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise self._error("plan read-back", exc) from exc
                for item in r["Responses"].get(self.table, []):
                    found[item["slice_key"]] = decode_entry(item)
                request = r.get("UnprocessedKeys") or {}
        return [found[s.key] for s in slices]

    def get(self, key: str) -> LedgerEntry | None:
        """The entry for slice `key`, or None."""
        return self._get(key)

    def update(self, entry: LedgerEntry, changes: Mapping[str, Any]) -> LedgerEntry:
        """The entry after `changes`, if still at `entry.version` (else raises StaleEntry)."""
        values = check_changes(entry, changes)
        values.setdefault("updated_at", datetime.now(UTC))
        new = dataclasses.replace(entry, **values, version=entry.version + 1)
        names = {f"#f{i}": name for i, name in enumerate(values)}
        sets, removes, params = ["#version = :new"], [], {":new": new.version,
                                                          ":seen": entry.version}
        for alias, name in names.items():
            encoded = encode_field(name, getattr(new, name))
            if encoded is None:
                removes.append(alias)
            else:
                sets.append(f"{alias} = :{alias[1:]}")
                params[f":{alias[1:]}"] = encoded
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._table.update_item(
                Key={"slice_key": entry.slice_key}, UpdateExpression=expression,
                ConditionExpression="#version = :seen",
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues=params)
        except ClientError as exc:
            if not _failed_condition(exc):
                raise self._error(f"update of slice {entry.slice_key}", exc) from exc
            current = self._get(entry.slice_key)
            if current is None:
                raise StorageError(f"ledger dynamodb://{self.table}: no slice {entry.slice_key} "
                                   "to update") from None
            raise StaleEntry(f"slice {entry.slice_key}: changed by someone else (read at version "
                             f"{entry.version}, now {current.version}, {current.state.value})"
                             ) from None
        return new

    def query(self, *, states: Iterable[SliceState] | None = None, source: str | None = None,
              account_id: str | None = None, report_type: str | None = None,
              since: date | None = None) -> list[LedgerEntry]:
        """Entries matching every filter (`since`: report_date on or after), by date, key."""
        wanted = None if states is None else {SliceState(s) for s in states}
        out = []
        # A consistent scan filtered here: a ledger holds thousands of slices, not millions.
        for e in self._scan():
            if ((wanted is None or e.state in wanted)
                    and (source is None or e.source == source)
                    and (account_id is None or e.account_id == account_id)
                    and (report_type is None or e.report_type == report_type)
                    and (since is None or e.report_date >= since)):
                out.append(e)
        out.sort(key=lambda e: (e.report_date, e.slice_key))
        return out

    def _scan(self) -> Iterable[LedgerEntry]:
        args: dict[str, Any] = {"ConsistentRead": True}
        while True:
            try:
                page = self._table.scan(**args)
            except (ClientError, BotoCoreError) as exc:
                raise self._error("scan", exc) from exc
            yield from (decode_entry(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def acquire(self, key: str, owner: str, now: datetime, lease: timedelta) -> LedgerEntry | None:
        """The entry leased to `owner` until now + lease; None if another holds a live lease."""
        if not owner:
            raise ValueError("a lease needs an owner")
        try:
            r = self._table.update_item(
                Key={"slice_key": key},
                UpdateExpression="SET lease_owner = :owner, lease_until = :until, "
                                 "#version = #version + :one",
                ConditionExpression="attribute_exists(slice_key) AND (attribute_not_exists("
                                    "lease_owner) OR lease_owner = :owner OR lease_until <= :now)",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":owner": owner, ":until": encode_time(now + lease),
                                           ":now": encode_time(now), ":one": 1},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if not _failed_condition(exc):
                raise self._error(f"lease of slice {key}", exc) from exc
            if self._get(key) is None:
                raise StorageError(f"ledger dynamodb://{self.table}: no slice {key} to lease"
                                   ) from None
            return None
        return decode_entry(r["Attributes"])

    def extend(self, key: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Move `owner`'s lease on to now + lease, keeping the version; False if not held."""
        try:
            self._table.update_item(
                Key={"slice_key": key}, UpdateExpression="SET lease_until = :until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": owner, ":until": encode_time(now + lease)})
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise self._error(f"lease of slice {key}", exc) from exc
        return True

    def extend_all(self, keys: Sequence[str], owner: str, now: datetime, lease: timedelta
                   ) -> set[str]:
        """`extend` for each slice (DynamoDB has no conditional batch update); the keys held."""
        return {key for key in keys if self.extend(key, owner, now, lease)}

    def release(self, key: str, owner: str) -> LedgerEntry | None:
        """The entry with `owner`'s lease dropped, or None if `owner` does not hold it."""
        try:
            r = self._table.update_item(
                Key={"slice_key": key},
                UpdateExpression="SET #version = #version + :one REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":owner": owner, ":one": 1}, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if _failed_condition(exc):
                return None
            raise self._error(f"release of slice {key}", exc) from exc
        return decode_entry(r["Attributes"])

    def summary(self) -> list[LedgerSummary]:
        """Per account and report type: last complete day, pending count, failures with reasons."""
        return summarise(self.query())

    def close(self) -> None:
        """Nothing to release: boto3 pools its own connections."""

    def __enter__(self) -> DynamoLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DynamoLedger({self.table!r})"

