"""The transform state machine's quiet-period gate (guidance step 4), kept in one DynamoDB item.

Every new raw document starts an execution of the transform state machine, which parks at
UpdateMetadata (`.waitForTaskToken`). `arrive` records the document's arrival in the item keyed
`pk = "transform"` and swaps in this execution's task token in the same atomic UpdateItem; the
token it replaced is sent SendTaskSuccess {"superseded": true}, so that execution ends quietly.
Only the newest execution waits. `release` (a scheduled rule, every minute) sends
{"go": true, ...} to the stored token once no document has arrived for the quiet period, and
drops the token (conditioned on it still being the stored one: a document that arrived meanwhile
keeps its own execution waiting). A token is sent before it is dropped, so a crash in between
means a second send that Step Functions refuses (ignored), never a transform that is not started.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from amzlake.slices import is_data_document

log = logging.getLogger(__name__)

GATE_KEY = "transform"  # the item's partition key value (attribute `pk`)
# SendTaskSuccess refusals that mean "that execution is no longer waiting" (Step Functions API
# reference, SendTaskSuccess, Errors): nothing left to wake.
TOKEN_GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
# The raw zone's first key level that holds report documents (quarantine records are not one).
DATA_SOURCES = ("ads", "vendor")


def data_document(key: str, raw_prefix: str) -> bool:
    """Whether an object key under the raw zone's `raw_prefix` is a report document to curate
    (not a FATAL report's error document, not a quarantine record, not outside the raw zone)."""
    prefix = raw_prefix.strip("/")
    rel = key
    if prefix:
        if not key.startswith(prefix + "/"):
            return False
        rel = key[len(prefix) + 1:]
    return rel.split("/", 1)[0] in DATA_SOURCES and is_data_document(rel)


class TaskTokens(Protocol):
    """Wakes a waiting Step Functions task."""

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        """True once delivered; False if the execution no longer waits for `token`."""
        ...


@dataclass
class SfnTaskTokens:
    """SendTaskSuccess through boto3 (AWS_ENDPOINT_URL honoured)."""

    client: Any = None

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        """True once delivered; False if the execution no longer waits for `token`."""
        from botocore.exceptions import ClientError

        if self.client is None:
            import boto3

            self.client = boto3.client("stepfunctions")
        try:
            self.client.send_task_success(taskToken=token, output=json.dumps(dict(output)))
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in TOKEN_GONE:
                log.info("task token no longer waited for (%s)", code)
                return False
            raise
        return True


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("gate times must be timezone-aware")
    return value.isoformat()


@dataclass(frozen=True)
class GateState:
    """The gate item as read: the waiting token, the last arrival and how many since release."""

    task_token: str | None
    last_arrival: datetime | None
    waiting_since: datetime | None
    objects: int
    last_key: str | None

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> GateState:
        """The state an item (or its absence) describes."""
        item = item or {}

        def ts(name: str) -> datetime | None:
            return datetime.fromisoformat(item[name]) if item.get(name) else None

        return cls(item.get("task_token"), ts("last_arrival"), ts("waiting_since"),
                   int(item.get("objects") or 0), item.get("last_key"))


class TransformGate:
    """The gate in DynamoDB table `table` (partition key `pk`, a string)."""

    def __init__(self, table: str, tokens: TaskTokens, *, resource: Any = None) -> None:
        if resource is None:
            import boto3

            resource = boto3.resource("dynamodb")
        self.table_name = table
        self._table = resource.Table(table)
        self.tokens = tokens

    def state(self) -> GateState:
        """The gate as it is now (consistent read)."""
        item = self._table.get_item(Key={"pk": GATE_KEY}, ConsistentRead=True).get("Item")
        return GateState.from_item(item)

    def arrive(self, key: str, size: int, token: str, now: datetime) -> dict[str, Any]:
        """{"recorded", "superseded"}: the arrival recorded with `token` as the waiting one; the
        token it replaced told to end (superseded: whether there was one to tell)."""
        answer = self._table.update_item(
            Key={"pk": GATE_KEY},
            UpdateExpression=(
                "SET task_token = :token, last_arrival = :now, last_key = :key, "
                "last_size = :size, waiting_since = if_not_exists(waiting_since, :now) "
                "ADD objects :one"),
            ExpressionAttributeValues={":token": token, ":now": _iso(now), ":key": key,
                                       ":size": int(size), ":one": 1},
            ReturnValues="UPDATED_OLD",
        )
        old = answer.get("Attributes", {}).get("task_token")
        superseded = bool(old) and old != token
        if superseded:
            self.tokens.succeed(old, {"superseded": True, "by_key": key})
        return {"recorded": True, "superseded": superseded, "key": key}

    def release(self, now: datetime, quiet: timedelta) -> dict[str, Any]:
        """{"released", "waiting_since"}: the waiting execution woken (go) if no document arrived
        for `quiet`; waiting_since is when its burst began (None when nothing waits)."""
        state = self.state()
        since = state.waiting_since.isoformat() if state.waiting_since else None
        if state.task_token is None or state.last_arrival is None:
            return {"released": False, "waiting_since": None}
        if now - state.last_arrival < quiet:
            return {"released": False, "waiting_since": since}
        delivered = self.tokens.succeed(state.task_token, {
            "go": True, "objects": state.objects, "waiting_since": since,
            "last_arrival": state.last_arrival.isoformat(), "last_key": state.last_key,
        })
        from botocore.exceptions import ClientError

        try:
            self._table.update_item(
                Key={"pk": GATE_KEY},
                UpdateExpression=("REMOVE task_token, waiting_since "
                                  "SET objects = :zero, released_at = :now"),
                ConditionExpression="task_token = :token",
                ExpressionAttributeValues={":token": state.task_token, ":zero": 0,
                                           ":now": _iso(now)},
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # A newer document swapped its own token in meanwhile: it waits its quiet period.
        return {"released": delivered, "waiting_since": since}
