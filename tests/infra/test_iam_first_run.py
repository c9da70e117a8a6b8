"""Each role's synthesized policy allows every AWS call its code makes, on a first run, a rerun
and a failure path.

How: the stack's resources are created in a moto server that records every request (who signed
it, which operation, which resource: tests/infra/recording_moto.py). The real handlers run as the
state machines order them, each with the access key of its own Lambda role, against the Amazon
emulator; the real Glue job runs as its own process (pyspark local mode) with the Glue role's key,
as Glue runs it. Each recorded call then becomes the IAM requests AWS would evaluate (action,
every required resource ARN, the KMS calls made with the caller's identity) and is checked
against that role's statements in the template (tests/infra/iam_eval.py).

Why this way: moto does not enforce IAM by default, and its optional enforcement matches
resources only for S3, SQS, IAM and STS (moto 5.2: every other service is checked against "*"),
so a call on the wrong table or Glue database would pass.
An offline evaluator alone would need the list of calls written by hand, which is the very thing
that goes stale. Recording what the code actually sent, at the HTTP level, also catches calls
made outside boto3 (pyiceberg's data files go through pyarrow's own S3 client) and in Spark's
worker processes. A missing permission makes the run's check fail (the last test removes one).
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

from amzlake.aws.settings import RAW_PREFIX
from amzlake.emulator.server import EmulatorServer
from amzlake.errors import RemoteError, ThrottledError
from amzlake.slices import is_data_document
from tests.conftest import scenario_for_tests
from tests.infra.iam_eval import ACCOUNT, PARTITION, REGION, Denied, World, check_calls, role_statements
from tests.infra.recording_moto import read_records, recording_moto
from tests.infra.synth import Synth

pytestmark = pytest.mark.timeout(600)

ADMIN_KEY = "AKIATESTADMIN0000000"  # sets the world up; its calls are not checked
SECRET_KEY = "testing"
# Faults that hit only the report types the failure-path run adds.
FAULTS = [
    {"kind": "throttle", "operation": "spapi.createReport",
     "report_type": "GET_VENDOR_INVENTORY_REPORT", "times": 10},
    {"kind": "fatal", "operation": "spapi.createReport",
     "report_type": "GET_VENDOR_TRAFFIC_REPORT", "times": 1},
    {"kind": "truncate", "operation": "ads.download", "report_type": "sbCampaigns", "times": 1},
]
REPORTS = {"ads": [{"report_type": "spCampaigns"}],
           "vendor": [{"report_type": "GET_VENDOR_SALES_REPORT"}]}
FAILURE_REPORTS = {"ads": [{"report_type": "spCampaigns"}, {"report_type": "sbCampaigns"}],
                   "vendor": [{"report_type": "GET_VENDOR_SALES_REPORT"},
                              {"report_type": "GET_VENDOR_TRAFFIC_REPORT"},
                              {"report_type": "GET_VENDOR_INVENTORY_REPORT"}]}
SITUATIONS = ("first run", "rerun", "failure path")
QUIET = timedelta(seconds=300)


@dataclass
class LambdaContext:
    """What the handlers read of Lambda's context object."""

    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Deployment:
    """The stack's resources in the recording moto server, and each role's access key."""

    endpoint: str
    synth: Synth
    world: World
    keys: dict[str, str]  # role logical id -> access key id
    role_names: dict[str, str]  # role logical id -> what runs as it
    lambda_env: dict[str, str]
    glue_args: dict[str, str]
    raw_bucket: str
    curated_bucket: str
    emulator: Any
    config: dict[str, Any]
    log: Path
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)  # situation -> records


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=ADMIN_KEY, aws_secret_access_key=SECRET_KEY)


def _deploy(endpoint: str, synth: Synth, emu: Any) -> tuple[World, dict[str, Any]]:
    """Create in moto what the handlers and the job touch, named as CloudFormation would;
    returns the world that resolves the template, and the moto names."""
    stack, tag = synth.stack, uuid.uuid4().hex[:8]
    refs: dict[str, Any] = {}
    attrs: dict[tuple[str, str], Any] = {}
    kms = _client(endpoint, "kms")
    key = kms.create_key(Description="amzlake test key")["KeyMetadata"]
    key_id = synth.logical(stack.key)
    refs[key_id], attrs[(key_id, "Arn")] = key["KeyId"], key["Arn"]
    world = World(refs, attrs)
    s3 = _client(endpoint, "s3")
    names: dict[str, Any] = {}
    for attr, bucket in (("raw", stack.raw), ("curated", stack.curated),
                         ("artifacts", stack.artifacts)):
        name = f"{attr}-{tag}"
        s3.create_bucket(Bucket=name)
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                   "KMSMasterKeyID": key["Arn"]},
            "BucketKeyEnabled": True}]})
        refs[synth.logical(bucket)] = name
        attrs[(synth.logical(bucket), "Arn")] = f"arn:{PARTITION}:s3:::{name}"
        world.bucket_keys[name] = key["Arn"]
        names[attr] = name
    db = _client(endpoint, "dynamodb")
    for table, pk in ((stack.ledger, "slice_key"), (stack.transform_table, "pk"),
                      (stack.rate_table, "pk")):
        name = f"{synth.logical(table)}-{tag}"
        arn = db.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": pk, "KeyType": "HASH"}],
                              )["TableDescription"]["TableArn"]
        refs[synth.logical(table)], attrs[(synth.logical(table), "Arn")] = name, arn
    creds = emu.credentials
    value = json.dumps({"client_secret": creds["lwa"]["client_secret"],
                        "ads_refresh_token": creds["ads"]["refresh_token"],
                        "us_refresh_token": creds["vendor"][0]["refresh_token"]})
    sm = _client(endpoint, "secretsmanager")
    for secret in stack.secrets:
        arn = sm.create_secret(Name=f"{synth.logical(secret)}-{tag}", KmsKeyId=key["Arn"],
                               SecretString=value)["ARN"]
        refs[synth.logical(secret)] = arn
        world.secret_keys[arn] = key["Arn"]
    topic = _client(endpoint, "sns").create_topic(
        Name=f"notifications-{tag}", Attributes={"KmsMasterKeyId": key["Arn"]})["TopicArn"]
    refs[synth.logical(stack.topic)] = topic
    world.topic_keys[topic] = key["Arn"]
    # The stack's Glue database (the job must cope with finding it there on its first run).
    database = stack.settings.glue_database
    _client(endpoint, "glue").create_database(DatabaseInput={"Name": database})
    refs[synth.logical(stack.glue_database)] = database
    refs[synth.logical(stack.glue_job)] = stack.settings.glue_job_name
    world.token_machine = (f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:"
                           f"{stack.settings.transform_machine_name}")
    refs[synth.logical(stack.transform)] = world.token_machine
    return world, names


def _shipped_config(synth: Synth, world: World, emu: Any) -> dict[str, Any]:
    """The config the Lambdas get from the template, pointed at the emulator's accounts."""
    variables = synth.props(synth.stack.functions["Plan"])["Environment"]["Variables"]
    config = json.loads(world.resolve(variables["AMZLAKE_CONFIG_JSON"]))
    creds = emu.credentials
    for app in config["lwa"].values():
        app["client_id"] = creds["lwa"]["client_id"]
    vendor_ref = config["vendor"]["accounts"][0]["refresh_token"]
    config["vendor"]["accounts"] = [{
        "selling_partner_id": creds["vendor"][0]["selling_partner_id"],
        "region": creds["vendor"][0]["region"],
        "marketplace_id": creds["vendor"][0]["marketplace_id"], "refresh_token": vendor_ref}]
    config["ads"].update({"countries": ["US"], "lookback_days": 1})
    config["vendor"]["lookback_days"] = 1
    config["endpoints"] = {"base_url": emu.base_url}
    config["run"] = {"poll_initial": "10s", "poll_max": "2m", "max_wait": {"default": "48h"}}
    config["transform"] = {"quiet_period": f"{int(QUIET.total_seconds())}s", "workers": 1}
    return config


def _with_reports(config: dict[str, Any], reports: dict[str, list[dict[str, str]]]
                  ) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    out["ads"]["reports"], out["vendor"]["reports"] = reports["ads"], reports["vendor"]
    return out


class Runner:
    """Runs the handlers as their own roles, in the order the state machines give them."""

    def __init__(self, d: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
        self.d, self.mp = d, monkeypatch
        self.retried: list[str] = []

    def as_role(self, role: str) -> None:
        self.mp.setenv("AWS_ACCESS_KEY_ID", self.d.keys[role])
        self.mp.setattr(boto3, "DEFAULT_SESSION", None)  # a new session reads the new key

    def call(self, step: str, event: dict[str, Any]) -> Any:
        from amzlake.aws import handlers

        name = next(n for n, fn in self.d.synth.stack.functions.items()
                    if self.d.synth.props(fn)["Handler"].endswith(f".{step}"))
        self.as_role(self.d.synth.logical(self.d.synth.stack.functions[name].role))
        for attempt in range(6):  # the ASL's Retry on these two
            try:
                return getattr(handlers, step)(dict(event), LambdaContext())
            except (ThrottledError, RemoteError) as e:
                self.retried.append(f"{step}:{type(e).__name__}")
                if attempt == 5:
                    raise
                self.d.emulator.state.clock.advance(10 * 2 ** attempt)
        raise AssertionError("unreachable")

    def ingest(self, reports: dict[str, list[dict[str, str]]], crash: str | None = None) -> None:
        self.mp.setenv("AMZLAKE_CONFIG_JSON", json.dumps(_with_reports(self.d.config, reports)))
        planned = self.call("plan", {"execution": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:"
                                                  f"ingest:{uuid.uuid4().hex[:6]}"})
        results = []
        for item in planned["slices"]:
            key = item["slice_key"]
            if crash is not None and not results:
                # A Lambda that died mid-step: only Summarize can record it (the Map's Catch).
                results.append({"slice_key": key, "status": "failed",
                                "error": "Sandbox.Timedout", "cause": "Task timed out"})
                continue
            results.append(self.slice(key, planned["run_id"]))
        self.call("summarize", {"run_id": planned["run_id"], "results": results})

    def slice(self, key: str, run_id: str) -> dict[str, Any]:
        try:
            out = self.call("create_report", {"slice_key": key, "run_id": run_id})
        except (ThrottledError, RemoteError) as e:
            return {"slice_key": key, "status": "failed", "error": type(e).__name__, "cause": ""}
        if out["state"] in ("failed", "empty", "cancelled", "downloaded", "curated"):
            return out
        polls, wait = out["polls"], out["wait_seconds"]
        for _ in range(40):
            self.d.emulator.state.clock.advance(wait)
            check = self.call("check_report_status", {"slice_key": key, "polls": polls})
            polls, wait = check["polls"], check["wait_seconds"]
            if check["status"] == "ready":
                try:
                    return self.call("download_report", {"slice_key": key})
                except (ThrottledError, RemoteError):
                    return {"slice_key": key, "status": "failed", "error": "RemoteError"}
            if check["status"] != "waiting":
                return check
        return {"slice_key": key, "status": "waited_out", "polls": polls}

    def secret_age(self, variables: dict[str, Any], role: str) -> None:
        """The daily secret-age monitor, as its own role."""
        from amzlake.aws.infra import secret_age

        for name, value in variables.items():
            self.mp.setenv(name, str(self.d.world.resolve(value)))
        self.as_role(role)
        ages = secret_age.handler({}, LambdaContext())
        assert set(ages) == set(self.d.synth.stack.settings.lwa_apps)

    def gate(self) -> None:
        """Every new raw document through update_metadata, then the quiet-period release."""
        s3 = _client(self.d.endpoint, "s3")
        listed = s3.list_objects_v2(Bucket=self.d.raw_bucket, Prefix=f"{RAW_PREFIX}/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        when = self.d.emulator.state.clock.now()
        for key in keys[-3:]:  # a few arrivals: the gate supersedes the older
            self.call("update_metadata", {
                "detail": {"bucket": {"name": self.d.raw_bucket},
                           "object": {"key": key, "size": 10}},
                "task_token": f"token-{uuid.uuid4().hex}", "time": when.isoformat()})
        self.call("release_quiet", {"time": (when + QUIET + timedelta(seconds=1)).isoformat()})
        assert any(is_data_document(k) for k in keys)

    def glue(self, job: GlueProcess, run: str) -> None:
        """One run of the Glue job's main, with the Glue role's key (GlueProcess)."""
        d = self.d
        role = d.synth.logical(d.synth.stack.glue_role)
        props = {"glue.endpoint": d.endpoint, "s3.endpoint": d.endpoint, "glue.region": REGION,
                 "s3.region": REGION, "glue.access-key-id": d.keys[role],
                 "glue.secret-access-key": SECRET_KEY, "s3.access-key-id": d.keys[role],
                 "s3.secret-access-key": SECRET_KEY}
        job.run(["--config_json", d.glue_args["--config_json"],
                 "--warehouse", d.glue_args["--warehouse"],
                 "--database", d.glue_args["--database"],
                 "--catalog_properties", json.dumps(props),
                 "--summary_out", f"s3://{d.curated_bucket}/glue-summaries/{run}.json",
                 "--master", "local[1]"])


# Runs amzlake.aws.glue_job.main once per line of JSON arguments on stdin, answering one line.
_GLUE_LOOP = """
import json, sys, traceback
from amzlake.aws import glue_job
for line in sys.stdin:
    try:
        glue_job.main(json.loads(line))
        print("ok", flush=True)
    except BaseException:
        traceback.print_exc()
        print("failed", flush=True)
"""


class GlueProcess:
    """The Glue job in a process of its own with the Glue role's credentials, as on Glue; one
    process serves the test's three runs so that Spark starts once (about 30 s each)."""

    def __init__(self, endpoint: str, key_id: str, cwd: Path) -> None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
               "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION,
               "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        env.pop("AWS_SESSION_TOKEN", None)
        self.stderr = cwd / "glue-stderr.txt"
        self.proc = subprocess.Popen([sys.executable, "-c", _GLUE_LOOP], env=env, cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr.open("w"), text=True)

    def run(self, argv: list[str]) -> None:
        """One job run; AssertionError with its log's end when it failed."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        answer = ""
        while answer not in ("ok", "failed"):  # the job prints its summary line first
            answer = self.proc.stdout.readline().strip()
            if not answer and self.proc.poll() is not None:
                break
        assert answer == "ok", self.stderr.read_text()[-4000:]

    def close(self) -> None:
        """Ends the process."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _break_one_document(d: Deployment) -> None:
    """A newer document for a curated Ads slice, gzip but not rows, as a re-pull could bring:
    the job quarantines it (set up with the test's own key, so not checked)."""
    import asyncio
    import gzip

    from amzlake.ingest.states import SliceState
    from amzlake.storage.dynamo_ledger import DynamoLedger
    from amzlake.storage.ledger import RawObject
    from amzlake.storage.s3_store import S3Store

    os.environ["AWS_ACCESS_KEY_ID"] = ADMIN_KEY
    boto3.DEFAULT_SESSION = None
    ledger = DynamoLedger(d.config["storage"]["ledger"].removeprefix("dynamodb://"),
                          create_missing=False)
    victim = ledger.query(states=[SliceState.CURATED], report_type="spCampaigns")[0]
    store = S3Store(d.raw_bucket, RAW_PREFIX)
    bad_key = victim.raw_objects[-1].key.replace(".json.gz", "0.json.gz")

    async def put() -> None:
        async def body() -> Any:
            yield gzip.compress(b'{"not": "an array"}')

        await store.put_stream(bad_key, body())

    asyncio.run(put())
    info = store.head(bad_key)
    assert info is not None
    ledger.update(victim, {"state": SliceState.DOWNLOADED, "raw_objects": (
        *victim.raw_objects, RawObject(bad_key, info.sha256, info.size,
                                       victim.raw_objects[-1].fetched_at))})


@pytest.fixture(scope="module")
def deployment(synth: Synth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The three situations run once for the module; the recorded calls are read by the tests."""
    tmp = tmp_path_factory.mktemp("iam")
    log, faults = tmp / "requests.jsonl", tmp / "faults.json"
    server = EmulatorServer(scenario_for_tests(faults=FAULTS, token_lifetime=10**7)).start()
    import httpx

    client = httpx.Client(base_url=server.base_url, timeout=30.0)
    from tests.conftest import RunningEmulator

    emu = RunningEmulator(server.base_url, server.state,
                          client.get("/_emulator/credentials").json(), client)
    mp = pytest.MonkeyPatch()
    stack_of_closers: list[Callable[[], None]] = []
    try:
        with recording_moto(log, faults) as endpoint:
            for name, value in {"AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                                "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true",
                                "AWS_CONFIG_FILE": os.devnull,
                                "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
                mp.setenv(name, value)
            mp.delenv("AWS_SESSION_TOKEN", raising=False)
            mp.delenv("AWS_PROFILE", raising=False)
            world, names = _deploy(endpoint, synth, emu)
            stack = synth.stack
            roles = {synth.logical(fn.role): name for name, fn in stack.functions.items()}
            roles[synth.logical(stack.glue_role)] = "Glue job"
            monitor = stack.operations.secret_age
            roles[synth.logical(monitor.role)] = "SecretAge monitor"
            keys = {role: f"AKIA{i:04d}{uuid.uuid4().hex[:12].upper()}"
                    for i, role in enumerate(roles)}
            variables = synth.props(stack.functions["Plan"])["Environment"]["Variables"]
            lambda_env = {k: str(world.resolve(v)) for k, v in variables.items()}
            glue_args = {k: str(world.resolve(v)) for k, v in
                         synth.props(stack.glue_job)["DefaultArguments"].items()}
            d = Deployment(endpoint, synth, world, keys, roles, lambda_env, glue_args,
                           names["raw"], names["curated"], emu,
                           _shipped_config(synth, world, emu), log)
            for k, v in lambda_env.items():
                mp.setenv(k, v)
            from amzlake.aws import handlers

            mp.setattr(handlers, "_WARM_TOKENS", {})
            runner = Runner(d, mp)
            job = GlueProcess(endpoint, keys[synth.logical(stack.glue_role)], tmp)
            stack_of_closers.append(job.close)
            for situation in SITUATIONS:
                start = len(read_records(log))
                if situation == "rerun":
                    emu.state.clock.advance(86_400)  # the next day: new days, restatements
                failing = situation == "failure path"
                runner.ingest(FAILURE_REPORTS if failing else REPORTS,
                              crash="first" if failing else None)
                runner.gate()
                if failing:
                    _break_one_document(d)
                    # Creating the namespace fails once for another reason than "exists": the
                    # writer's fallback lists the databases.
                    faults.write_text(json.dumps({"AWSGlue.CreateDatabase": {
                        "code": "ConcurrentModificationException", "times": 1}}))
                runner.glue(job, situation.replace(" ", "-"))
                runner.secret_age(synth.props(monitor)["Environment"]["Variables"],
                                  synth.logical(monitor.role))
                d.marks[situation] = (start, len(read_records(log)))
            d.retried = runner.retried  # type: ignore[attr-defined]
            yield d
    finally:
        for close in stack_of_closers:
            close()
        mp.undo()
        client.close()
        server.stop()


def _denied_text(denied: list[Denied], d: Deployment) -> str:
    return "\n".join(f"{d.role_names[x.role]} ({x.role}): {x.request.action} on "
                     f"{x.request.resource} ({x.request.why})" for x in denied)


def _check(d: Deployment, situation: str, statements: Callable[[str], Any] | None = None
           ) -> tuple[list[Denied], dict[str, set[str]]]:
    start, end = d.marks[situation]
    records = read_records(d.log)[start:end]
    roles = {key: role for role, key in d.keys.items()}
    policy = statements or (lambda role: role_statements(d.synth.data, role, d.world))
    return check_calls(records, roles, policy, d.world)


@pytest.mark.parametrize("situation", SITUATIONS)
def test_every_call_each_role_made_is_allowed_by_its_policy(deployment: Deployment,
                                                             situation: str) -> None:
    denied, seen = _check(deployment, situation)
    assert denied == [], _denied_text(denied, deployment)
    # Every role was exercised (the gate and the job included), so the check means something.
    assert set(seen) == set(deployment.keys), sorted(
        deployment.role_names[r] for r in set(deployment.keys) - set(seen))


def test_the_situations_exercised_what_they_are_for(deployment: Deployment) -> None:
    d = deployment
    glue_role = d.synth.logical(d.synth.stack.glue_role)
    first, rerun, failure = (_check(d, s)[1] for s in SITUATIONS)
    # First run: the job finds its database there, still asks to create it (pyiceberg's
    # create_namespace), and creates the tables.
    assert {"glue:CreateDatabase", "glue:CreateTable", "glue:GetDatabase"} <= first[glue_role]
    # Rerun: the tables exist and are updated (a commit is an UpdateTable).
    assert "glue:UpdateTable" in rerun[glue_role]
    assert "glue:CreateTable" not in rerun[glue_role]
    # Failure path: throttling retried, a quarantine record written by the job.
    assert any("ThrottledError" in r for r in d.retried)  # type: ignore[attr-defined]
    start, end = d.marks["failure path"]
    puts = [r["path"] for r in read_records(d.log)[start:end]
            if r["key_id"] == d.keys[glue_role] and r["method"] in ("PUT", "POST")]
    assert any(f"/{d.raw_bucket}/{RAW_PREFIX}/quarantine/" in p for p in puts)
    assert "s3:PutObject" in failure[glue_role]
    assert "glue:GetDatabases" in failure[glue_role]  # the namespace fallback ran


def test_a_missing_permission_fails_the_check(deployment: Deployment) -> None:
    d = deployment
    glue_role = d.synth.logical(d.synth.stack.glue_role)

    def without_create_database(role: str) -> list[dict[str, Any]]:
        out = []
        for s in role_statements(d.synth.data, role, d.world):
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            kept = [a for a in actions if a != "glue:CreateDatabase"]
            if kept:
                out.append({**s, "Action": kept})
        return out

    denied, _ = _check(d, "first run", without_create_database)
    assert {(x.role, x.request.action) for x in denied} == {(glue_role, "glue:CreateDatabase")}
