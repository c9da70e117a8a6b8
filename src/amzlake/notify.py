"""Notifications when new curated data lands (guidance step 7): log line, JSON lines, webhook, command.

Each commit to a curated table sends one event; a document that could not be parsed sends a
quarantine event. Events hold table names, partitions, counts, ids and reasons: never a credential.
The AWS runtime's SNS notifier (`[notify] sns = "<topic ARN>"`) is behind the same interface.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from amzlake.config import NotifyConfig
from amzlake.errors import AmzlakeError

log = logging.getLogger("amzlake.notify")


class NotifyError(AmzlakeError):
    """A notifier could not deliver an event (after its retries)."""


@dataclass(frozen=True)
class CommitEvent:
    """One atomic commit to a curated table."""

    table: str
    snapshot_id: int | None
    rows_added: int
    rows_replaced: int
    partitions: tuple[str, ...]  # report_date values touched
    slice_key: str
    account_id: str
    report_type: str
    kind: str = "commit"
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass(frozen=True)
class QuarantineEvent:
    """A raw document the transform could not parse, set aside with its reason."""

    raw_key: str
    reason: str
    slice_key: str
    account_id: str
    report_type: str
    kind: str = "quarantine"
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


Event = CommitEvent | QuarantineEvent


def event_json(event: Event) -> dict[str, Any]:
    """The event as JSON-ready data."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(event).items()}


class Notifier(Protocol):
    """Somewhere events go."""

    name: str

    def send(self, event: Event) -> None: ...


class LogNotifier:
    """One log line per event (the default)."""

    name = "log"

    def send(self, event: Event) -> None:
        if isinstance(event, CommitEvent):
            log.info("committed %s: +%d rows, %d replaced, %d partition(s), snapshot %s (slice %s)",
                     event.table, event.rows_added, event.rows_replaced, len(event.partitions),
                     event.snapshot_id, event.slice_key)
        else:
            log.warning("quarantined %s: %s", event.raw_key, event.reason)


@dataclass
class JsonLinesNotifier:
    """Appends each event as one JSON line to a file."""

    path: Path
    name: str = "jsonl"

    def send(self, event: Event) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event_json(event)) + "\n")


@dataclass
class WebhookNotifier:
    """POSTs each event as JSON; retries 5xx, 429 and connection errors with full jitter."""

    url: str
    retries: int = 3
    timeout: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None
    name: str = "webhook"

    def send(self, event: Event) -> None:
        body = event_json(event)
        last = ""
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            for attempt in range(self.retries + 1):
                try:
                    answer = client.post(self.url, json=body)
                    if answer.status_code < 300:
                        return
                    last = f"HTTP {answer.status_code}"
                    if answer.status_code < 500 and answer.status_code != 429:
                        break  # the receiver refuses the event itself: retrying will not help
                except httpx.HTTPError as e:
                    last = type(e).__name__
                if attempt < self.retries:
                    self.sleep(random.uniform(0, min(30.0, 0.5 * 2**attempt)))
        raise NotifyError(f"webhook {httpx.URL(self.url).host}: event not delivered ({last})")


@dataclass
class CommandNotifier:
    """Runs a command per event with the event JSON on its standard input."""

    argv: Sequence[str]
    timeout: float = 60.0
    name: str = "command"

    def send(self, event: Event) -> None:
        try:
            done = subprocess.run(list(self.argv), input=json.dumps(event_json(event)), text=True,
                                  capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NotifyError(f"notify command {self.argv[0]}: {e}") from None
        if done.returncode != 0:
            raise NotifyError(f"notify command {self.argv[0]} exited {done.returncode}: "
                              f"{done.stderr.strip()[:200]}")


def _subject(event: Event) -> str:
    # SNS subjects: ASCII, no line breaks, at most 100 characters (SNS Publish API reference).
    if isinstance(event, CommitEvent):
        text = f"amzlake: committed {event.table}"
    else:
        text = f"amzlake: quarantined a {event.report_type} document"
    return text.encode("ascii", "replace").decode()[:100]


@dataclass
class SnsNotifier:
    """Publishes each event as JSON to an SNS topic (the AWS runtime's notifier).

    boto3 is imported when the first message goes out, so the core runs without it; the region
    is the topic ARN's, the endpoint boto3's own (AWS_ENDPOINT_URL honoured).
    """

    topic_arn: str
    client: Any = None
    name: str = "sns"

    def _sns(self) -> Any:
        if self.client is None:
            try:
                import boto3
            except ImportError:
                raise NotifyError("sns: needs boto3; install amzlake with the aws extra") from None
            region = self.topic_arn.split(":")[3] if self.topic_arn.count(":") >= 5 else None
            self.client = boto3.client("sns", region_name=region or None)
        return self.client

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        """Publish `message` as JSON, `kind` (its "kind" or "event") as a message attribute."""
        kind = str(message.get("kind") or message.get("event") or "event")
        try:
            self._sns().publish(
                TopicArn=self.topic_arn, Subject=subject, Message=json.dumps(message),
                MessageAttributes={"kind": {"DataType": "String", "StringValue": kind}})
        except NotifyError:
            raise
        except Exception as e:  # botocore's errors, imported lazily, so caught broadly
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            topic = self.topic_arn.rsplit(":", 1)[-1]
            raise NotifyError(f"sns topic {topic}: event not delivered ({code})") from None

    def send(self, event: Event) -> None:
        self.publish(_subject(event), event_json(event))


def notifiers_from_config(config: NotifyConfig) -> list[Notifier]:
    """The notifiers [notify] asks for."""
    out: list[Notifier] = []
    if config.log:
        out.append(LogNotifier())
    if config.jsonl is not None:
        out.append(JsonLinesNotifier(config.jsonl))
    if config.webhook is not None:
        out.append(WebhookNotifier(config.webhook.url, config.webhook.retries,
                                   config.webhook.timeout.total_seconds()))
    if config.command:
        out.append(CommandNotifier(config.command))
    if config.sns:
        out.append(SnsNotifier(config.sns))
    return out


def broadcast(notifiers: Sequence[Notifier], event: Event) -> list[str]:
    """Send `event` to every notifier; returns the failures (one notifier never stops the others)."""
    failures = []
    for n in notifiers:
        try:
            n.send(event)
        except NotifyError as e:
            log.error("%s", e)
            failures.append(str(e))
    return failures
