"""The Lambda handlers against a moto server (S3 + KMS, DynamoDB, Secrets Manager, SNS/SQS, Step
Functions) with the emulator standing in for Amazon, driven in the order the state machines
define: plan -> per slice create -> wait/check loop -> download -> summarize, through faults;
then the transform gate (update_metadata per raw object, release_quiet after the quiet period)
and the transform, whose commits go out on SNS.

Step Functions' Retry is played by `_step` (the same error names as the ASL's Retry), its Wait
by moving the emulator's clock forward. SendTaskSuccess goes to moto for real (which accepts any
token); what was sent is read off boto3's own event hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from amzlake.aws import handlers
from amzlake.aws.config_source import load_lambda_config
from amzlake.aws.transform_gate import GATE_KEY, data_document
from amzlake.catalog.vendor import CLIENT_ERROR_TEXT
from amzlake.config import parse_config
from amzlake.errors import ConfigError, RemoteError, ThrottledError
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.notify import CommitEvent, NotifyError, SnsNotifier
from amzlake.storage.dynamo_ledger import DynamoLedger
from amzlake.storage.s3_store import S3Store
from amzlake.transform.curate import Transformer
from tests.conftest import FIXED_NOW, RunningEmulator
from tests.integration.lake_helpers import glue_properties

TWO_ADS_REPORTS = {"reports": [{"report_type": "spCampaigns"},
                                {"report_type": "spAdvertisedProduct"}]}
LONG_TOKENS = 10**7  # access tokens outlive the test (see test_ingest_run.py)
MAX_POLLS = 40  # the state machine's bound on the check loop
RAW_PREFIX = "raw"
QUIET = timedelta(minutes=5)
RETRIED = (ThrottledError, RemoteError)  # the ASL's Retry ErrorEquals (by class name)

# Each fault hits a known report type: the sales create is throttled past the client's retries
# (8 attempts), the inventory report comes back CANCELLED, the traffic report FATAL (Amazon's
# validation text), and the first Ads document download is cut short.
FAULTS = [
    {"kind": "throttle", "operation": "spapi.createReport",
     "report_type": "GET_VENDOR_SALES_REPORT", "times": 10},
    {"kind": "cancelled", "report_type": "GET_VENDOR_INVENTORY_REPORT", "times": 1},
    {"kind": "fatal", "operation": "spapi.createReport",
     "report_type": "GET_VENDOR_TRAFFIC_REPORT", "reason": CLIENT_ERROR_TEXT, "times": 1},
    {"kind": "truncate", "operation": "ads.download", "times": 1},
]


@dataclass
class LambdaContext:
    """What the handlers read of Lambda's context object."""

    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Aws:
    """The moto-side resources of one test, and the emulator."""

    endpoint: str
    emu: RunningEmulator
    bucket: str
    key_arn: str
    ledger_table: str
    gate_table: str
    topic_arn: str
    queue_url: str
    secret_values: list[str]
    config: dict[str, Any]

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint)

    def ledger(self) -> DynamoLedger:
        return DynamoLedger(self.ledger_table, create_missing=False)

    def messages(self) -> list[dict[str, Any]]:
        """Every message SNS delivered to the test's queue so far (raw delivery: the JSON)."""
        sqs, out = self.client("sqs"), []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


def _vendor_accounts(emu: RunningEmulator) -> list[dict[str, Any]]:
    return [{"selling_partner_id": v["selling_partner_id"], "region": v["region"],
             "marketplace_id": v["marketplace_id"],
             "refresh_token": f"SECRET#refresh_tokens.vendor{i}"}
            for i, v in enumerate(emu.credentials["vendor"])]


def _config(aws: dict[str, str], emu: RunningEmulator, tmp: Path, secret: str,
            **sections: Any) -> dict[str, Any]:
    ref = f"secretsmanager:{secret}"
    vendors = [{**v, "refresh_token": v["refresh_token"].replace("SECRET", ref)}
               for v in _vendor_accounts(emu)]
    data: dict[str, Any] = {
        "lwa": {"default": {"client_id": emu.credentials["lwa"]["client_id"],
                            "client_secret": f"{ref}#client_secret"}},
        "ads": {"enabled": True, "refresh_token": f"{ref}#refresh_tokens.ads",
                "countries": ["US"], "lookback_days": 2,
                "reports": [{"report_type": "spCampaigns"}]},
        "vendor": {"enabled": True, "accounts": vendors[:1], "lookback_days": 2,
                   "reports": [{"report_type": "GET_VENDOR_SALES_REPORT"},
                               {"report_type": "GET_VENDOR_TRAFFIC_REPORT"},
                               {"report_type": "GET_VENDOR_INVENTORY_REPORT"}]},
        "storage": {"raw": f"s3://{aws['bucket']}/{RAW_PREFIX}",
                    "ledger": f"dynamodb://{aws['ledger']}", "lake": str(tmp / "lake")},
        "run": {"poll_initial": "10s", "poll_max": "2m"},
        "endpoints": {"base_url": emu.base_url},
        "transform": {"quiet_period": f"{int(QUIET.total_seconds())}s", "workers": 1},
        "notify": {"log": False, "sns": aws["topic"]},
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return data


@pytest.fixture
def make_aws(moto_server: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
             make_emulator: Callable[..., RunningEmulator]) -> Iterator[Callable[..., Aws]]:
    """Builds the AWS side of a deployment on the moto server for an emulator with `faults`."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    # A fresh "container" per test: no access token of an earlier test's emulator.
    monkeypatch.setattr(handlers, "_WARM_TOKENS", {})

    def build(faults: list[dict[str, Any]], **sections: Any) -> Aws:
        emu = make_emulator(token_lifetime=LONG_TOKENS, faults=faults)
        tag = uuid.uuid4().hex[:10]
        names = {"bucket": f"raw-{tag}", "ledger": f"ledger-{tag}", "gate": f"gate-{tag}",
                 "rate": f"rate-{tag}"}
        kms = boto3.client("kms")
        key_arn = kms.create_key(Description="amzlake test CMK")["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=names["bucket"])
        s3.put_bucket_encryption(Bucket=names["bucket"], ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}, "BucketKeyEnabled": True}]})
        db = boto3.client("dynamodb")
        for table, key in ((names["ledger"], "slice_key"), (names["gate"], "pk"),
                           (names["rate"], "pk")):
            db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}])
        creds = emu.credentials
        values = {"client_secret": creds["lwa"]["client_secret"],
                  "refresh_tokens": {"ads": creds["ads"]["refresh_token"],
                                     **{f"vendor{i}": v["refresh_token"]
                                        for i, v in enumerate(creds["vendor"])}}}
        secret = f"amzlake/lwa/default-{tag}"
        boto3.client("secretsmanager").create_secret(Name=secret, SecretString=json.dumps(values))
        sns, sqs = boto3.client("sns"), boto3.client("sqs")
        topic = sns.create_topic(Name=f"amzlake-{tag}")["TopicArn"]
        queue = sqs.create_queue(QueueName=f"notes-{tag}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
        config = _config({"bucket": names["bucket"], "ledger": names["ledger"], "topic": topic},
                         emu, tmp_path, secret, **sections)
        monkeypatch.setenv("AMZLAKE_CONFIG_JSON", json.dumps(config))
        monkeypatch.setenv("AMZLAKE_TRANSFORM_TABLE", names["gate"])
        monkeypatch.setenv("AMZLAKE_RATE_TABLE", names["rate"])
        secrets = [creds["lwa"]["client_secret"], creds["ads"]["refresh_token"],
                   *(v["refresh_token"] for v in creds["vendor"])]
        return Aws(moto_server, emu, names["bucket"], key_arn, names["ledger"], names["gate"],
                   topic, queue, secrets, config)

    yield build


# ---- The state machines, played in order --------------------------------------------------------


@dataclass
class Driver:
    """Plays the ingest state machine's steps for the handlers, as its ASL orders them."""

    aws: Aws
    retried: list[tuple[str, str]] = field(default_factory=list)  # (step, error class)

    def step(self, name: str, event: dict[str, Any], attempts: int = 6) -> dict[str, Any]:
        """One Lambda task with the ASL's Retry: a retried error waits (virtually) and tries
        again; any other error, or the last attempt's, is the Catch's."""
        fn = getattr(handlers, name)
        for attempt in range(attempts):
            try:
                return fn(dict(event), LambdaContext())
            except RETRIED as e:
                self.retried.append((name, type(e).__name__))
                if attempt == attempts - 1:
                    raise
                self.aws.emu.state.clock.advance(10 * 2 ** attempt)
        raise AssertionError("unreachable")

    def slice(self, slice_key: str, run_id: str) -> dict[str, Any]:
        """The Map's iterator for one slice: its last state's output."""
        created = self.step("create_report", {"slice_key": slice_key, "run_id": run_id})
        if created["state"] in ("failed", "empty", "cancelled", "downloaded", "curated"):
            return created
        polls, wait = created["polls"], created["wait_seconds"]
        while True:
            self.aws.emu.state.clock.advance(wait)
            check = self.step("check_report_status", {"slice_key": slice_key, "polls": polls})
            polls, wait = check["polls"], check["wait_seconds"]
            if check["status"] == "ready":
                return self.step("download_report", {"slice_key": slice_key})
            if check["status"] == "waiting" and polls < MAX_POLLS:
                continue
            if check["status"] == "waiting":
                return {"slice_key": slice_key, "status": "waited_out", "polls": polls}
            return check

    def run(self) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        """Plan -> Map -> Summarize; returns the plan, the Map's results and the summary."""
        planned = self.step("plan", {"execution": "arn:aws:states:us-east-1:123456789012:"
                                                  "execution:ingest:run-1"})
        results = [self.slice(s["slice_key"], planned["run_id"]) for s in planned["slices"]]
        summary = self.step("summarize", {"run_id": planned["run_id"], "results": results})
        return planned, results, summary


@pytest.fixture
def sent_task_results(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """(token, output) of every SendTaskSuccess the handlers send (to moto) in this test."""
    sent: list[tuple[str, dict[str, Any]]] = []
    session = boto3.session.Session()

    def seen(params: dict[str, Any], **_: Any) -> None:
        sent.append((params["taskToken"], json.loads(params["output"])))

    session.events.register("provide-client-params.sfn.SendTaskSuccess", seen)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    return sent


def _calls(emu: RunningEmulator) -> dict[str, Any]:
    return emu.client.get("/_emulator/calls").json()


def _s3_event(bucket: str, key: str, size: int, token: str, when: Any) -> dict[str, Any]:
    return {"detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
            "task_token": token, "time": when.isoformat()}


# ---- Tests --------------------------------------------------------------------------------------


def test_a_whole_run_with_faults_then_the_transform_gate_and_sns(
        make_aws: Callable[..., Aws], sent_task_results: list[tuple[str, dict[str, Any]]],
        tmp_path: Path) -> None:
    aws = make_aws(FAULTS)
    driver = Driver(aws)
    planned, results, summary = driver.run()

    # -- the ledger: every slice where its fault put it, nothing lost ----------------------------
    ledger = aws.ledger()
    entries = {e.slice_key: e for e in ledger.query()}
    assert sorted(entries) == sorted(s["slice_key"] for s in planned["slices"])
    by_type: dict[str, list[Any]] = {}
    for e in entries.values():
        by_type.setdefault(e.report_type, []).append(e)
    sales, traffic, inventory, ads = (
        by_type["GET_VENDOR_SALES_REPORT"], by_type["GET_VENDOR_TRAFFIC_REPORT"],
        by_type["GET_VENDOR_INVENTORY_REPORT"], by_type["spCampaigns"])
    # The throttled create was retried by the state machine, and asked Amazon once.
    assert ("create_report", "ThrottledError") in driver.retried
    assert all(e.state is SliceState.DOWNLOADED and e.attempts == 1 for e in sales)
    # CANCELLED is "no data", recorded as empty.
    empty = [e for e in inventory if e.state is SliceState.EMPTY]
    assert len(empty) == 1 and "cancelled" in (empty[0].note or "")
    assert all(e.state is SliceState.DOWNLOADED for e in inventory if e not in empty)
    # The FATAL: failed as fatal-input with Amazon's text, its error document kept in S3.
    fatal = [e for e in traffic if e.state is SliceState.FAILED]
    assert len(fatal) == 1 and fatal[0].failure_class is FailureClass.FATAL_INPUT
    assert CLIENT_ERROR_TEXT in (fatal[0].error or "")
    assert fatal[0].raw_objects[0].key.endswith(".fatal.json.gz")
    assert all(e.state is SliceState.DOWNLOADED for e in traffic if e not in fatal)
    assert all(e.state in (SliceState.DOWNLOADED, SliceState.EMPTY) for e in ads)
    assert all(e.lease_owner is None for e in entries.values())  # every lease given back
    # Every call to Amazon also came out of the budget the invocations share (rate_budget.py).
    buckets = aws.client("dynamodb").scan(TableName=os.environ["AMZLAKE_RATE_TABLE"])["Items"]
    shared = {tuple(b["pk"]["S"].split("|")[1::2]) for b in buckets}  # (api, operation)
    assert {("spapi", "createReport"), ("spapi", "getReport"), ("spapi", "getReportDocument"),
            ("ads", "createAsyncReport"), ("ads", "getAsyncReport")} <= shared

    # -- summarize: the ledger's counts and the failure, and the same on SNS --------------------
    expected_counts: dict[str, int] = {}
    for e in entries.values():
        expected_counts[e.state.value] = expected_counts.get(e.state.value, 0) + 1
    assert summary["counts"] == expected_counts
    assert [f["slice_key"] for f in summary["failed"]] == [fatal[0].slice_key]
    assert summary["failed"][0]["failure_class"] == "fatal-input"
    ingest_note = [m for m in aws.messages() if m.get("event") == "ingest_finished"]
    assert len(ingest_note) == 1 and ingest_note[0]["counts"] == expected_counts
    assert ingest_note[0]["run_id"] == "run-1"

    # -- every fault fired; Amazon saw one create per slice (429s and FATAL not asked twice) ----
    faults = aws.emu.client.get("/_emulator/faults").json()["faults"]
    fired = {f["kind"]: f["fired"] for f in faults}
    assert fired == {"throttle": 10, "cancelled": 1, "fatal": 1, "truncate": 1}
    calls = _calls(aws.emu)
    assert calls["duplicate_creates"] == 0 and calls["distinct_requests"] == len(entries)
    # The steps' invocations hand their access tokens on (this process is one warm container):
    # one grant per refresh token (Ads, the vendor account), not one per invocation.
    invocations = 2 + sum(1 + r.get("polls", 0) for r in results)
    assert calls["calls"]["lwa.token"] == 2 < invocations

    # -- S3: one verified object per downloaded slice (the truncated one was not kept), SSE-KMS --
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket=aws.bucket, Prefix=f"{RAW_PREFIX}/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    expected_keys = sorted(f"{RAW_PREFIX}/{r.key}" for e in entries.values()
                           for r in e.raw_objects)
    assert keys == expected_keys
    downloaded = [e for e in entries.values() if e.state is SliceState.DOWNLOADED]
    assert all(len(e.raw_objects) == 1 for e in downloaded)
    for e in entries.values():
        for raw in e.raw_objects:
            head = s3.head_object(Bucket=aws.bucket, Key=f"{RAW_PREFIX}/{raw.key}")
            assert head["ServerSideEncryption"] == "aws:kms"
            assert head["SSEKMSKeyId"] == aws.key_arn
            assert head["Metadata"]["sha256"] == raw.sha256
            assert head["ContentLength"] == raw.size
    download_results = [r for r in results if "raw_key" in r]
    assert sorted(r["raw_key"] for r in download_results if r["raw_key"]) == sorted(
        e.raw_objects[-1].key for e in entries.values() if e.raw_objects
        and not e.raw_objects[-1].key.endswith(".fatal.json.gz"))

    # -- the transform gate: one execution waits, the others end as superseded ------------------
    gate_events = []
    t0 = FIXED_NOW + timedelta(hours=1)
    for i, o in enumerate(sorted(listed, key=lambda o: o["Key"])):
        event = _s3_event(aws.bucket, o["Key"], o["Size"], f"token-{i}", t0 + timedelta(seconds=i))
        gate_events.append((o["Key"], handlers.update_metadata(event, LambdaContext())))
    data_keys = [k for k, _ in gate_events if data_document(k, RAW_PREFIX)]
    fatal_keys = [k for k, _ in gate_events if k.endswith(".fatal.json.gz")]
    assert len(data_keys) == len(download_results) and len(fatal_keys) == 1
    tokens = [f"token-{i}" for i, (k, _) in enumerate(gate_events) if k in data_keys]
    ignored = [f"token-{i}" for i, (k, _) in enumerate(gate_events) if k in fatal_keys]
    outputs = dict(sent_task_results)
    assert all(outputs[t] == {"superseded": True, "by_key": data_keys[n + 1]}
               for n, t in enumerate(tokens[:-1]))
    assert outputs[ignored[0]]["superseded"] is True  # an error document starts no transform
    assert tokens[-1] not in outputs  # the newest one waits
    gate = aws.client("dynamodb").get_item(TableName=aws.gate_table,
                                           Key={"pk": {"S": GATE_KEY}})["Item"]
    assert gate["task_token"]["S"] == tokens[-1] and int(gate["objects"]["N"]) == len(data_keys)
    last = t0 + timedelta(seconds=len(gate_events) - 1)

    early = handlers.release_quiet({"time": (last + QUIET / 2).isoformat()}, LambdaContext())
    assert early == {"released": False, "waiting_since": t0.isoformat()}
    assert tokens[-1] not in dict(sent_task_results)
    go = handlers.release_quiet({"time": (last + QUIET).isoformat()}, LambdaContext())
    assert go == {"released": True, "waiting_since": t0.isoformat()}
    released = dict(sent_task_results)[tokens[-1]]
    assert released["go"] is True and released["objects"] == len(data_keys)
    assert handlers.release_quiet({"time": (last + 2 * QUIET).isoformat()}, LambdaContext()) == {
        "released": False, "waiting_since": None}
    assert len(sent_task_results) == len(gate_events)  # each token answered exactly once

    # -- the transform (the embedded one standing in for the Glue job) into the Glue Data Catalog
    # on the curated bucket: curated, tables registered in Glue, commits on SNS -----------------
    config = load_lambda_config()
    curated = f"{aws.bucket}-curated"
    aws.client("s3").create_bucket(Bucket=curated)
    database = f"amzlake_{aws.bucket.replace('-', '_')}"  # the moto server is shared by the session
    transformer = Transformer(
        ledger=ledger, store=S3Store(aws.bucket, RAW_PREFIX), raw_location=config.storage.raw_location,
        lake_dir=tmp_path / "lake", notifiers=[SnsNotifier(aws.topic_arn)], workers=1,
        catalog_overrides=glue_properties(aws.endpoint, curated), namespace=database,
        now=aws.emu.state.clock.now)
    done = transformer.run()
    assert not done.quarantined and not done.notify_failures and done.commits
    in_glue = {t["Name"] for t in aws.client("glue").get_tables(DatabaseName=database)["TableList"]}
    assert in_glue == {c.table for c in done.commits}
    after = {e.slice_key: e.state for e in ledger.query()}
    assert all(after[e.slice_key] is SliceState.CURATED for e in downloaded)
    commits = [m for m in aws.messages() if m.get("kind") == "commit"]
    assert len(commits) == len(done.commits)
    assert sum(m["rows_added"] for m in commits) == sum(c.rows_added for c in done.commits) > 0
    assert {m["slice_key"] for m in commits} == {e.slice_key for e in downloaded}

    # -- no secret anywhere: ledger items, gate item, the messages sent -------------------------
    stored = json.dumps(aws.client("dynamodb").scan(TableName=aws.ledger_table)["Items"])
    stored += json.dumps(gate) + json.dumps(commits + ingest_note)
    assert not [s for s in aws.secret_values if s in stored]


def test_a_report_still_running_when_the_polls_run_out_is_reattached_by_the_next_run(
        make_aws: Callable[..., Aws]) -> None:
    aws = make_aws([], vendor={"enabled": False, "accounts": []}, ads=TWO_ADS_REPORTS)
    driver = Driver(aws)
    planned = driver.step("plan", {})
    keys = [s["slice_key"] for s in planned["slices"]]
    # The first run's Map: each report asked for, then the loop's bound is reached at once.
    first = []
    for key in keys:
        created = driver.step("create_report", {"slice_key": key, "run_id": planned["run_id"]})
        assert created["state"] == "requested" and created["wait_seconds"] == 10
        first.append({"slice_key": key, "status": "waited_out", "polls": MAX_POLLS})
    summary = driver.step("summarize", {"results": first})
    # Waited out is still live ("processing"), its remote report id kept.
    assert summary == {"counts": {"processing": len(keys)}, "failed": []}
    ledger = aws.ledger()
    assert all("still not ready after 40 polls" in (e.note or "") for e in ledger.query())
    creates = _calls(aws.emu)["calls"]["ads.createAsyncReport"]
    # The next run takes the live slices again and finishes them without asking twice.
    again = driver.step("plan", {"run_id": "second"})
    assert {s["slice_key"] for s in again["slices"]} >= set(keys)
    results = [driver.slice(s["slice_key"], "second") for s in again["slices"]]
    assert all(r["state"] in ("downloaded", "empty") for r in results)
    assert _calls(aws.emu)["calls"]["ads.createAsyncReport"] == creates + len(
        set(s["slice_key"] for s in again["slices"]) - set(keys))
    assert all(e.attempts == 1 for e in ledger.query() if e.slice_key in keys)


def test_a_crashed_step_is_recorded_by_summarize_and_the_check_reports_a_gone_report(
        make_aws: Callable[..., Aws]) -> None:
    aws = make_aws([], vendor={"enabled": False, "accounts": []}, ads=TWO_ADS_REPORTS)
    driver = Driver(aws)
    planned = driver.step("plan", {})
    crashed, gone = planned["slices"][0]["slice_key"], planned["slices"][-1]["slice_key"]
    assert crashed != gone
    driver.step("create_report", {"slice_key": gone})
    ledger = aws.ledger()
    entry = ledger.get(gone)
    assert entry is not None
    ledger.update(entry, {"remote_report_id": "no-such-report"})
    # A Lambda that timed out before recording anything: the Map's Catch output.
    caught = {"slice_key": crashed, "status": "failed", "error": "Sandbox.Timedout",
              "cause": "Task timed out after 120.00 seconds"}
    checked = driver.step("check_report_status", {"slice_key": gone, "polls": 0})
    assert checked["status"] == "failed" and checked["polls"] == 1
    summary = driver.step("summarize", {"results": [caught, checked]})
    assert summary["counts"] == {"failed": 2}
    reasons = {f["slice_key"]: (f["failure_class"], f["error"]) for f in summary["failed"]}
    assert reasons[crashed] == ("retryable", "step failed: Sandbox.Timedout: Task timed out "
                                             "after 120.00 seconds")
    assert reasons[gone][0] == "retryable" and "the report is gone" in reasons[gone][1]


def test_config_from_s3_and_what_the_lambda_runtime_refuses(
        moto_server: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    bucket = f"conf-{uuid.uuid4().hex[:10]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="amzlake.toml", Body=b"""
[storage]
raw = "s3://raw-bucket/raw"
ledger = "dynamodb://ledger"
[transform]
quiet_period = "2m"
""")
    env = {"AMZLAKE_CONFIG_S3": f"s3://{bucket}/amzlake.toml", "AMZLAKE_RUN__CONCURRENCY": "3"}
    config = load_lambda_config(env)
    assert config.transform.quiet_period == timedelta(minutes=2) and config.run.concurrency == 3
    with pytest.raises(ConfigError, match="AMZLAKE_CONFIG_JSON"):
        load_lambda_config({})
    with pytest.raises(ConfigError, match=r"storage\.raw must be s3://"):
        load_lambda_config({"AMZLAKE_CONFIG_JSON": json.dumps(
            {"storage": {"ledger": "dynamodb://ledger"}})})
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_lambda_config({"AMZLAKE_CONFIG_S3": f"s3://{bucket}/missing.toml"})


def test_data_documents_are_report_objects_only() -> None:
    base = "ads/spCampaigns/2026-11-18/123/abc/20261120T150000000000Z"
    assert data_document(f"raw/{base}.json.gz", "raw")
    assert not data_document(f"raw/{base}.fatal.json.gz", "raw")
    assert not data_document(f"other/{base}.json.gz", "raw")
    assert not data_document("raw/quarantine/abc.json", "raw")
    assert data_document(f"{base}.json.gz", "")


def test_the_handlers_import_without_the_transforms_heavy_libraries() -> None:
    # The Lambda bundle leaves out pyarrow, duckdb and numpy (amzlake.aws.bundling).
    code = ("import sys\n"
            "for name in ('pyarrow', 'duckdb', 'numpy', 'pyiceberg'):\n"
            "    sys.modules[name] = None\n"
            "import amzlake.aws.handlers\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_sns_notifier_says_which_topic_refused_and_the_config_checks_the_arn(
        moto_server: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    event = CommitEvent("ads_sp_campaigns", 1, 3, 0, ("2026-11-18",), "abc", "123", "spCampaigns")
    with pytest.raises(NotifyError, match=r"sns topic no-such-topic: event not delivered"):
        SnsNotifier("arn:aws:sns:us-east-1:123456789012:no-such-topic").send(event)
    assert parse_config({"notify": {"sns": "arn:aws:sns:eu-west-1:123456789012:amzlake"}},
                        environ={}).notify.sns == "arn:aws:sns:eu-west-1:123456789012:amzlake"
    with pytest.raises(ConfigError, match=r"notify\.sns"):
        parse_config({"notify": {"sns": "amzlake-topic"}}, environ={})
