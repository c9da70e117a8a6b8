"""Notifiers: log line, JSON lines, webhook (real HTTP on 127.0.0.1, retried), shell command."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from amzlake.config import NotifyConfig
from amzlake.notify import (
    CommandNotifier,
    CommitEvent,
    JsonLinesNotifier,
    LogNotifier,
    NotifyError,
    QuarantineEvent,
    WebhookNotifier,
    broadcast,
    notifiers_from_config,
)

EVENT = CommitEvent(table="ads_sp_campaigns_daily", snapshot_id=42, rows_added=10, rows_replaced=7,
                    partitions=("2026-11-19",), slice_key="abc", account_id="111",
                    report_type="spCampaigns")


class Receiver:
    """A webhook receiver that answers `statuses` in turn (then 200) and keeps what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def no_sleep() -> Iterator[list[float]]:
    """A stand-in for time.sleep that records the backoff delays instead of sleeping."""
    slept: list[float] = []
    yield slept


def test_webhook_is_retried_until_delivered(no_sleep: list[float]) -> None:
    with Receiver([503, 429]) as hook:
        WebhookNotifier(hook.url, retries=3, sleep=no_sleep.append).send(EVENT)
    assert len(hook.bodies) == 3 and hook.bodies[-1]["table"] == "ads_sp_campaigns_daily"
    assert hook.bodies[-1]["rows_added"] == 10 and len(no_sleep) == 2


def test_webhook_gives_up_with_a_clear_error(no_sleep: list[float]) -> None:
    with Receiver([500, 500, 500]) as hook, pytest.raises(NotifyError, match="HTTP 500"):
        WebhookNotifier(hook.url, retries=2, sleep=no_sleep.append).send(EVENT)
    with Receiver([400]) as hook, pytest.raises(NotifyError, match="HTTP 400"):
        WebhookNotifier(hook.url, retries=3, sleep=no_sleep.append).send(EVENT)
    assert len(hook.bodies) == 1  # a refusal is not retried


def test_jsonl_log_and_command(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "events.jsonl"
    quarantine = QuarantineEvent(raw_key="ads/x.json.gz", reason="bad gzip", slice_key="s",
                                 account_id="111", report_type="spCampaigns")
    out = tmp_path / "out.json"
    command = CommandNotifier([sys.executable, "-c",
                               f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())"])
    with caplog.at_level(logging.INFO, logger="amzlake.notify"):
        failures = broadcast([LogNotifier(), JsonLinesNotifier(path), command], EVENT)
        broadcast([JsonLinesNotifier(path)], quarantine)
    assert failures == []
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["commit", "quarantine"]
    assert json.loads(out.read_text())["snapshot_id"] == 42
    assert "ads_sp_campaigns_daily" in caplog.text


def test_a_failing_notifier_does_not_stop_the_others(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    failing = CommandNotifier([sys.executable, "-c", "import sys; sys.exit(3)"])
    failures = broadcast([failing, JsonLinesNotifier(path)], EVENT)
    assert len(failures) == 1 and "exited 3" in failures[0]
    assert path.exists()


def test_notifiers_from_config(tmp_path: Path) -> None:
    config = NotifyConfig.model_validate(
        {"jsonl": str(tmp_path / "e.jsonl"), "webhook": {"url": "http://127.0.0.1:9/x"},
         "command": ["true"]}, context={"base_dir": tmp_path})
    assert [n.name for n in notifiers_from_config(config)] == ["log", "jsonl", "webhook", "command"]
