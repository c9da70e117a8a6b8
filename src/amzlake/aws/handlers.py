"""The Lambda handlers: one per state machine step, each a thin shell over the core.

Ingest state machine (Plan -> Map { CreateReport -> Wait/CheckReportStatus loop ->
DownloadReport } -> Summarize), steps in amzlake.aws.ingest_steps:

    plan(event)                 -> {"run_id", "slices": [{"slice_key"}, ...]}
    create_report({"slice_key"}) -> {"slice_key", "state", "wait_seconds", "polls": 0}
    check_report_status({"slice_key", "polls"})
                                -> {"slice_key", "status", "wait_seconds", "polls"}
                                   status: waiting | ready | done | failed | empty | waited_out
    download_report({"slice_key"}) -> {"slice_key", "state", "raw_key"}
    summarize({"results": [...]}) -> {"counts": {...}, "failed": [...]}

Transform state machine (UpdateMetadata .waitForTaskToken -> Glue -> SNS), amzlake.aws.transform_gate:

    update_metadata({"detail": {"bucket": {"name"}, "object": {"key", "size"}}, "task_token"})
    release_quiet(event)        -> {"released": bool, "waiting_since": ISO time | None}

Environment: AMZLAKE_CONFIG_JSON or AMZLAKE_CONFIG_S3 (the configuration, see config_source),
AMZLAKE_TRANSFORM_TABLE (the gate's table, partition key `pk`), optionally
AMZLAKE_RAW_KMS_KEY_ID (a KMS key every raw write names; else the bucket's default encryption),
AMZLAKE_RATE_TABLE (the rate budget the ingest steps share, aws/rate_budget.py; else each
invocation paces only its own calls).
AWS_ENDPOINT_URL points boto3 elsewhere (tests: a moto server). Errors the state machine
retries are raised by class name: ThrottledError, RemoteError (and its RequestTimeout,
OutcomeUnknown).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from amzlake.aws import ingest_steps
from amzlake.aws.config_source import LAMBDA_BASE_DIR, load_lambda_config
from amzlake.aws.rate_budget import DynamoBudget
from amzlake.aws.transform_gate import SfnTaskTokens, TransformGate, data_document
from amzlake.clock import ScaledClock
from amzlake.config import AmzlakeConfig
from amzlake.errors import ConfigError
from amzlake.ingest.pipeline import ClientPool, Ingestion, clock_for
from amzlake.notify import NotifyError, SnsNotifier
from amzlake.secrets import CredentialChain
from amzlake.sources.lwa import TokenCache
from amzlake.storage.ledger import open_ledger
from amzlake.storage.objects import open_store

log = logging.getLogger("amzlake.aws")
logging.getLogger("amzlake").setLevel(logging.INFO)  # Lambda leaves the root at WARNING

ENV_TRANSFORM_TABLE = "AMZLAKE_TRANSFORM_TABLE"
ENV_RAW_KMS_KEY_ID = "AMZLAKE_RAW_KMS_KEY_ID"
ENV_RATE_TABLE = "AMZLAKE_RATE_TABLE"
RATE_PATIENCE = 60.0  # real seconds a step may wait for a token of the shared budget

T = TypeVar("T")


def _owner(context: Any) -> str:
    """The lease owner name of this invocation."""
    request_id = getattr(context, "aws_request_id", None) or os.urandom(6).hex()
    return f"lambda:{request_id}"


def _event_time(event: Mapping[str, Any]) -> datetime:
    """The event's own time (EventBridge puts one on every event), else now."""
    text = event.get("time")
    if text:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return datetime.now(UTC)


def _rate_budget(clock: ScaledClock, context: Any) -> DynamoBudget | None:
    """The rate budget shared with the other invocations, when the stack names its table.

    A step waits for a token at most until a minute before its Lambda timeout; a longer wait is
    raised as ThrottledError and the state machine's Retry waits instead (without a Lambda).
    """
    table = os.environ.get(ENV_RATE_TABLE)
    if not table:
        return None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    real = RATE_PATIENCE if remaining is None else min(RATE_PATIENCE, remaining() / 1000 - 60)
    return DynamoBudget(table, patience=max(0.0, real) * clock.scale, scale=clock.scale,
                        sleep=clock.sleep)


# Access tokens this container's earlier invocations got (LWA tokens last an hour, a step takes
# seconds): kept in memory only, never written anywhere. The one state handlers keep between
# invocations, by design of the Lambda runtime, which reuses a warm process.
_WARM_TOKENS: dict[str, tuple[SecretStr, float]] = {}


def open_ingestion(config: AmzlakeConfig, context: Any) -> Ingestion:
    """The ingestion of one invocation: ledger (existing table), raw zone, clients, clock."""
    clock = clock_for(config)
    tokens = TokenCache(_WARM_TOKENS, now=lambda: time.time() * clock.scale)
    credentials = CredentialChain.default(base_dir=LAMBDA_BASE_DIR)
    kms_key = os.environ.get(ENV_RAW_KMS_KEY_ID)
    store_options = {"sse_kms_key_id": kms_key} if kms_key else {}
    return Ingestion(
        config, clock,
        open_ledger(config.storage.ledger_location, create_missing=False),
        open_store(config.storage.raw_location, **store_options),
        ClientPool(config, credentials, clock, shared=_rate_budget(clock, context),
                   token_cache=tokens),
        owner=_owner(context))


def _ingest(context: Any, step: Callable[[Ingestion], Awaitable[T]]) -> T:
    """Run one ingest step in a fresh event loop and ingestion, closed afterwards."""
    config = load_lambda_config()

    async def go() -> T:
        ingestion = open_ingestion(config, context)
        try:
            return await step(ingestion)
        finally:
            await ingestion.aclose()

    return asyncio.run(go())


def _slice_key(event: Mapping[str, Any]) -> str:
    key = event.get("slice_key")
    if not key:
        raise ValueError("the event has no slice_key")
    return str(key)


# ---- Ingest ---------------------------------------------------------------------------------


def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"run_id", "slices": [{"slice_key"}]}: the run's slices, planned and recorded."""
    return _ingest(context, lambda ing: ingest_steps.plan(ing, event or {}))


def create_report(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"slice_key", "state", "wait_seconds", "polls": 0}: the slice's report asked for."""
    key = _slice_key(event)
    return _ingest(context, lambda ing: ingest_steps.create_report(ing, key))


def check_report_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"slice_key", "status", "wait_seconds", "polls"}: one status check of the report."""
    key = _slice_key(event)
    polls = int(event.get("polls") or 0)
    return _ingest(context, lambda ing: ingest_steps.check_report_status(ing, key, polls))


def download_report(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"slice_key", "state", "raw_key"}: the report's document streamed into the raw zone."""
    key = _slice_key(event)
    return _ingest(context, lambda ing: ingest_steps.download_report(ing, key))


def summarize(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"counts", "failed"}: where the run's slices ended; published to SNS when configured."""
    config = load_lambda_config()
    ledger = open_ledger(config.storage.ledger_location, create_missing=False)
    try:
        out = ingest_steps.summarize(ledger, event.get("results") or [], owner=_owner(context),
                                     now=datetime.now(UTC))
    finally:
        ledger.close()
    if config.notify.sns:
        message = {"event": "ingest_finished", "run_id": event.get("run_id"), **out}
        try:
            SnsNotifier(config.notify.sns).publish(
                f"amzlake: ingest finished, {len(out['failed'])} failed", message)
        except NotifyError as e:  # the summary is in the ledger and the execution's output
            log.error("%s", e)
    log.info("run %s: %s", event.get("run_id"), out["counts"])
    return out


# ---- Transform gate -------------------------------------------------------------------------


def _gate() -> TransformGate:
    table = os.environ.get(ENV_TRANSFORM_TABLE)
    if not table:
        raise ConfigError(f"{ENV_TRANSFORM_TABLE} is not set (the transform gate's table)")
    return TransformGate(table, SfnTaskTokens())


def _raw_zone(config: AmzlakeConfig) -> tuple[str, str]:
    bucket, _, prefix = config.storage.raw_location.removeprefix("s3://").partition("/")
    return bucket, prefix


def update_metadata(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"recorded", "superseded", "key"}: a new raw object's arrival recorded, with this
    execution's task token as the one waiting (the token it replaced told to end)."""
    detail = event.get("detail") or {}
    token = event.get("task_token")
    if not token:
        raise ValueError("update_metadata needs the execution's task_token")
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    obj = detail.get("object") or {}
    key = str(obj.get("key") or "")
    raw_bucket, raw_prefix = _raw_zone(load_lambda_config())
    gate = _gate()
    if bucket != raw_bucket or not data_document(key, raw_prefix):
        # Not a report document (a FATAL's error document, a quarantine record): nothing to
        # transform, so this execution ends as a superseded one does.
        gate.tokens.succeed(token, {"superseded": True, "ignored": key})
        return {"recorded": False, "superseded": False, "key": key}
    return gate.arrive(key, int(obj.get("size") or 0), token, _event_time(event))


def release_quiet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """{"released", "waiting_since"}: the waiting transform started if the raw zone has been
    quiet for [transform] quiet_period."""
    config = load_lambda_config()
    out = _gate().release(_event_time(event or {}), config.transform.quiet_period)
    if out["released"]:
        log.info("transform released (waiting since %s)", out["waiting_since"])
    return out
