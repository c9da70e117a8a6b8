"""The rate budget concurrent Lambda invocations share: one token bucket per key in DynamoDB.

A Map state runs many ingest steps at once, each a process with its own clients, while Amazon
keeps one bucket per (account, operation) (DESIGN invariant 6). Every call therefore also takes a
token from an item of this table: read it (strongly consistent), refill it for the time since its
last write, and write it back one token lighter only if nobody wrote it meanwhile (a conditional
write on the time it was read with: optimistic concurrency, "Condition expressions", Amazon
DynamoDB developer guide). Too little in the bucket: sleep until a token is due and read again.

Times are wall-clock seconds (all invocations share them, unlike a monotonic clock), multiplied by
the run's time scale so that an emulator's virtual seconds work too. Items expire a day after
their last use (the table's TTL attribute `expires`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from amzlake.catalog.limits import RateLimit
from amzlake.errors import StorageError, ThrottledError

PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expires"
_ITEM_LIFETIME = 86_400  # real seconds an idle bucket is kept


def _failed_condition(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _operation(key: str) -> str:
    """`api.operation` of a budget key `api|account|operation` (ApiHttp.lane names them so)."""
    api, _, rest = key.partition("|")
    return f"{api}.{rest.rpartition('|')[2]}"


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(max(0.0, seconds))


class DynamoBudget:
    """Token buckets in the DynamoDB table `table` (partition key `pk`), shared by every process.

    `scale`: virtual seconds per real second (1 on AWS); `sleep` sleeps virtual seconds;
    `patience`: the longest (virtual) wait for one token before ThrottledError, so that a step
    hands a long wait to its state machine's Retry instead of spending its Lambda time on it.
    """

    def __init__(self, table: str, *, patience: float = 60.0, scale: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = _real_sleep,
                 wall: Callable[[], float] = time.time, endpoint_url: str | None = None,
                 region_name: str | None = None, rng: random.Random | None = None) -> None:
        self.table = table
        self.patience = patience
        self._scale = scale
        self._sleep = sleep
        self._wall = wall
        self._rng = rng or random.Random()
        self._db = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region_name)

    def _now(self) -> float:
        return self._wall() * self._scale

    def _error(self, doing: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"rate budget dynamodb://{self.table}: {doing} {key} failed: {exc}")

    async def take(self, key: str, limit: RateLimit) -> float:
        """Wait for a token of `key` (refilled at `limit`) and take it; returns the seconds waited."""
        waited = 0.0
        while True:
            due = await asyncio.to_thread(self._try_take, key, limit)
            if due == 0.0:
                return waited
            if waited + due > self.patience:
                raise ThrottledError(
                    f"rate budget {key}: the next token is {waited + due:.3g}s away, more than "
                    f"this step may wait ({self.patience:.3g}s); other calls of the same account "
                    "and operation are using the budget", operation=_operation(key))
            # A little jitter, so that processes waiting for the same token do not all read at once.
            pause = due + self._rng.uniform(0.0, 0.25) / limit.rate
            await self._sleep(pause)
            waited += pause

    def _try_take(self, key: str, limit: RateLimit) -> float:
        """0.0 once a token is taken, else the seconds until the next one is due."""
        pk = {PARTITION_KEY: {"S": f"budget|{key}"}}
        while True:  # each lost race means another process took a token: read again
            try:
                item = self._db.get_item(TableName=self.table, Key=pk,
                                         ConsistentRead=True).get("Item")
            except (ClientError, BotoCoreError) as exc:
                raise self._error("reading", key, exc) from exc
            now = self._now()
            tokens = float(limit.burst)
            condition: dict[str, Any] = {
                "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})"}
            if item is not None:
                at = item["at"]["N"]
                tokens = min(tokens, float(item["tokens"]["N"])
                             + max(0.0, now - float(at)) * limit.rate)
                # A writer whose clock ran ahead of ours set `at`: never move it back, or the
                # next reader would refill the same time twice.
                now = max(now, float(at))
                condition = {"ConditionExpression": "#at = :at",
                             "ExpressionAttributeNames": {"#at": "at"},
                             "ExpressionAttributeValues": {":at": {"N": at}}}
            if tokens < 1.0:
                return (1.0 - tokens) / limit.rate
            try:
                self._db.put_item(TableName=self.table, Item={
                    **pk, "tokens": {"N": f"{tokens - 1.0:.6f}"}, "at": {"N": f"{now:.6f}"},
                    TTL_ATTRIBUTE: {"N": str(int(self._wall()) + _ITEM_LIFETIME)},
                }, **condition)
                return 0.0
            except ClientError as exc:
                if not _failed_condition(exc):
                    raise self._error("taking a token of", key, exc) from exc
            except BotoCoreError as exc:
                raise self._error("taking a token of", key, exc) from exc

    async def drain(self, key: str) -> None:
        """Empty `key`'s bucket as of now (Amazon answered 429)."""
        await asyncio.to_thread(self._drain, key)

    def _drain(self, key: str) -> None:
        try:
            self._db.put_item(TableName=self.table, Item={
                PARTITION_KEY: {"S": f"budget|{key}"}, "tokens": {"N": "0"},
                "at": {"N": f"{self._now():.6f}"},
                TTL_ATTRIBUTE: {"N": str(int(self._wall()) + _ITEM_LIFETIME)},
            })
        except (ClientError, BotoCoreError) as exc:
            raise self._error("draining", key, exc) from exc
