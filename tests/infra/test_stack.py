"""The AWS stack, synthesized once (no AWS account): every component of issue 5's infrastructure,
cfn-lint, cdk-nag, and the two state machines' ASL (checked, then run with fake task results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
pytest.importorskip("aws_cdk", reason="the infra extra (aws-cdk-lib) is not installed")

from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks

from amzlake.aws import state_machines
from amzlake.aws.bundling import LAMBDA_EXCLUDED, filter_requirements
from amzlake.aws.settings import check_config, settings_from_context
from amzlake.errors import ConfigError
from tests.infra import asl
from tests.infra.synth import CONFIG, MAX_POLLS, Synth

HANDLERS = {"Plan": "plan", "CreateReport": "create_report",
            "CheckReportStatus": "check_report_status", "DownloadReport": "download_report",
            "Summarize": "summarize", "UpdateMetadata": "update_metadata",
            "ReleaseQuiet": "release_quiet"}


def _policy_statements(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    out = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        acts = s["Action"]
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out


# ---- KMS, S3, DynamoDB, Secrets Manager ------------------------------------------------------


def test_one_customer_managed_key_with_rotation(synth: Synth) -> None:
    synth.t.resource_count_is("AWS::KMS::Key", 1)
    synth.t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    synth.t.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Retain"})


def test_data_buckets_are_kms_encrypted_private_versioned_and_logged(synth: Synth) -> None:
    key = {"Fn::GetAtt": [synth.logical(synth.stack.key), "Arn"]}
    logs_bucket = synth.logical(synth.stack.access_logs)
    for bucket in (synth.stack.raw, synth.stack.curated, synth.stack.artifacts):
        props = synth.data["Resources"][synth.logical(bucket)]["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                         "KMSMasterKeyID": key}
        assert rule["BucketKeyEnabled"] is True
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_bucket}
    raw = synth.data["Resources"][synth.logical(synth.stack.raw)]["Properties"]
    # CDK turns on EventBridge delivery through its bucket-notifications custom resource.
    notifications = next(iter(synth.resources("Custom::S3BucketNotifications").values()))
    assert notifications["Properties"]["BucketName"] == {"Ref": synth.logical(synth.stack.raw)}
    assert notifications["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {}}
    rules = {r["Id"]: r for r in raw["LifecycleConfiguration"]["Rules"]}
    assert rules["raw-to-infrequent-access"]["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30}]
    assert "ExpirationInDays" not in rules["raw-to-infrequent-access"]  # raw is kept
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7}


def test_every_bucket_refuses_plain_http(synth: Synth) -> None:
    policies = synth.resources("AWS::S3::BucketPolicy")
    buckets = {json.dumps(p["Properties"]["Bucket"]) for p in policies.values()
               if any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport":
                                                                            "false"}}
                      for s in p["Properties"]["PolicyDocument"]["Statement"])}
    assert len(buckets) == 5 == len(synth.resources("AWS::S3::Bucket"))


def test_access_log_bucket_is_private_and_expires_logs(synth: Synth) -> None:
    props = synth.data["Resources"][synth.logical(synth.stack.access_logs)]["Properties"]
    assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 365
    assert "AccessControl" not in props  # delivery by bucket policy, not the legacy ACL


def test_tables_have_the_key_and_the_stateful_ones_pitr(synth: Synth) -> None:
    key = {"Fn::GetAtt": [synth.logical(synth.stack.key), "Arn"]}
    synth.t.resource_count_is("AWS::DynamoDB::Table", 3)
    for table in (synth.stack.ledger, synth.stack.transform_table, synth.stack.rate_table):
        props = synth.data["Resources"][synth.logical(table)]["Properties"]
        assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS",
                                             "KMSMasterKeyId": key}
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        if table is not synth.stack.rate_table:
            assert props["PointInTimeRecoverySpecification"] == {
                "PointInTimeRecoveryEnabled": True}
    ledger = synth.data["Resources"][synth.logical(synth.stack.ledger)]["Properties"]
    assert ledger["KeySchema"] == [{"AttributeName": "slice_key", "KeyType": "HASH"}]
    # The rate budget's items (aws/rate_budget.py): keyed by pk, expiring once idle.
    rate = synth.data["Resources"][synth.logical(synth.stack.rate_table)]["Properties"]
    from amzlake.aws import rate_budget

    assert rate["KeySchema"] == [{"AttributeName": rate_budget.PARTITION_KEY, "KeyType": "HASH"}]
    assert rate["TimeToLiveSpecification"] == {"AttributeName": rate_budget.TTL_ATTRIBUTE,
                                               "Enabled": True}


def test_steps_that_call_amazon_share_the_rate_budget(synth: Synth) -> None:
    handlers = pytest.importorskip("amzlake.aws.handlers")
    table = {"Ref": synth.logical(synth.stack.rate_table)}
    for name in ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport"):
        fn = synth.data["Resources"][synth.logical(synth.stack.functions[name])]["Properties"]
        assert fn["Environment"]["Variables"][handlers.ENV_RATE_TABLE] == table
        role = synth.logical(synth.stack.functions[name].role)
        policies = [p for p in synth.resources("AWS::IAM::Policy").values()
                    if {"Ref": role} in p["Properties"]["Roles"]]
        statements = [st for p in policies for st in p["Properties"]["PolicyDocument"]["Statement"]]
        rate_arn = {"Fn::GetAtt": [synth.logical(synth.stack.rate_table), "Arn"]}
        assert any(rate_arn in (st["Resource"] if isinstance(st["Resource"], list)
                                else [st["Resource"]]) and "dynamodb:PutItem" in st["Action"]
                   for st in statements), name


def test_one_secret_per_lwa_app_with_no_value_in_the_template(synth: Synth) -> None:
    secrets = synth.resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 2
    for s in secrets.values():
        # CloudFormation names them, so a kept secret never blocks a redeploy (settings.py).
        assert "Name" not in s["Properties"] and s["DeletionPolicy"] == "Retain"
        assert "SecretString" not in s["Properties"]
        assert s["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [synth.logical(synth.stack.key),
                                                              "Arn"]}
    assert "client_secret\":\"" not in json.dumps(synth.data).replace("#client_secret", "")


# ---- Lambdas ---------------------------------------------------------------------------------


def test_one_python312_lambda_per_handler_with_dlq_and_log_retention(synth: Synth) -> None:
    dlq = {"Fn::GetAtt": [synth.logical(synth.stack.dlq), "Arn"]}
    for name, handler in HANDLERS.items():
        fn = synth.stack.functions[name]
        props = synth.data["Resources"][synth.logical(fn)]["Properties"]
        assert props["Handler"] == f"amzlake.aws.handlers.{handler}"
        assert props["Runtime"] == "python3.12"
        env = props["Environment"]["Variables"]
        assert {"AMZLAKE_CONFIG_JSON", "AMZLAKE_TRANSFORM_TABLE",
                "AMZLAKE_RAW_KMS_KEY_ID"} <= set(env)
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert synth.data["Resources"][log_group]["Properties"]["RetentionInDays"] == 90
    configs = synth.resources("AWS::Lambda::EventInvokeConfig")
    assert len(configs) == len(HANDLERS)
    for c in configs.values():
        assert c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    queue = synth.data["Resources"][synth.logical(synth.stack.dlq)]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [synth.logical(synth.stack.key), "Arn"]}


def test_the_shipped_config_points_storage_at_the_stack(synth: Synth) -> None:
    fn = synth.stack.functions["Plan"]
    joined = synth.data["Resources"][synth.logical(fn)]["Properties"]["Environment"][
        "Variables"]["AMZLAKE_CONFIG_JSON"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in joined)
    config = json.loads(text)
    assert config["storage"]["raw"] == f"s3://<{synth.logical(synth.stack.raw)}>/raw"
    assert config["storage"]["ledger"] == f"dynamodb://<{synth.logical(synth.stack.ledger)}>"
    assert config["vendor"]["accounts"][0]["selling_partner_id"] == "A1VENDOREXAMPLE"
    # The config's secret references are shipped as the stack's own secrets' ARNs.
    secrets = {synth.logical(s): s for s in synth.stack.secrets}
    default = next(k for k in secrets if "Default" in k)
    vendor = next(k for k in secrets if "VendorApp" in k)
    assert config["ads"]["refresh_token"] == f"secretsmanager:<{default}>#ads_refresh_token"
    assert config["lwa"]["default"]["client_secret"] == f"secretsmanager:<{default}>#client_secret"
    assert config["vendor"]["accounts"][0]["refresh_token"] == (
        f"secretsmanager:<{vendor}>#us_refresh_token")


def test_each_lambda_role_holds_only_its_steps_permissions(synth: Synth) -> None:
    def actions(name: str) -> set[str]:
        role = synth.logical(synth.stack.functions[name].role)
        return _actions(_policy_statements(synth, role))

    every = set().union(*(actions(n) for n in HANDLERS))
    assert "*" not in every and not any(a.endswith(":*") for a in every)
    # Only Download and Check write the raw zone, and nobody deletes from it (append-only).
    writers = {n for n in HANDLERS if "s3:PutObject" in actions(n)}
    assert writers == {"DownloadReport", "CheckReportStatus"}
    assert not any(a.startswith("s3:Delete") for a in every)
    # Secrets: only the steps that talk to Amazon.
    readers = {n for n in HANDLERS if "secretsmanager:GetSecretValue" in actions(n)}
    assert readers == {"Plan", "CreateReport", "CheckReportStatus", "DownloadReport"}
    # Task tokens: only the transform gate, and only on the transform state machine.
    senders = {n for n in HANDLERS if "states:SendTaskSuccess" in actions(n)}
    assert senders == {"UpdateMetadata", "ReleaseQuiet"}
    role = synth.logical(synth.stack.functions["ReleaseQuiet"].role)
    token = [s for s in _policy_statements(synth, role) if "states:SendTaskSuccess" in s["Action"]]
    assert "stateMachine:amzlake-a-transform" in json.dumps(token[0]["Resource"])
    ledger_users = {n for n in HANDLERS if any(
        a == "dynamodb:PutItem" for a in actions(n))}
    assert ledger_users == set(HANDLERS)  # ledger for the ingest steps, gate table for the rest
    gate = synth.logical(synth.stack.transform_table)
    for n in ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport", "Summarize"):
        assert gate not in json.dumps(_policy_statements(synth, synth.logical(
            synth.stack.functions[n].role)))
    ledger = synth.logical(synth.stack.ledger)
    for n in ("UpdateMetadata", "ReleaseQuiet"):
        assert ledger not in json.dumps(_policy_statements(synth, synth.logical(
            synth.stack.functions[n].role)))


def test_no_lambda_imports_what_the_bundle_leaves_out() -> None:
    handlers = Path(__file__).resolve().parents[2] / "src" / "amzlake" / "aws" / "handlers.py"
    if not handlers.is_file():
        pytest.skip("amzlake.aws.handlers is not written yet")
    code = ("import sys, amzlake.aws.handlers\n"
            f"print(sorted(m for m in {sorted(LAMBDA_EXCLUDED)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lambda_requirements_leave_out_the_big_packages() -> None:
    lines = ["# comment", "pyarrow==18.0.0", "boto3==1.44.8", "    # via amzlake", "",
             "duckdb==2.0.1", "orjson==3.10.0", "numpy==2.1.0 ; python_version >= '3.11'",
             "-e ."]
    assert filter_requirements(lines, LAMBDA_EXCLUDED) == ["boto3==1.44.8", "orjson==3.10.0"]


# ---- State machines, schedule, rules -------------------------------------------------------


def test_state_machines_log_everything_and_trace(synth: Synth) -> None:
    machines = synth.resources("AWS::StepFunctions::StateMachine")
    assert sorted(m["Properties"]["StateMachineName"] for m in machines.values()) == [
        "amzlake-a-ingest", "amzlake-a-transform"]
    for m in machines.values():
        props = m["Properties"]
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is True


@pytest.mark.parametrize("which", ["ingest", "transform"])
def test_asl_definitions_validate(synth: Synth, which: str) -> None:
    machine = synth.stack.ingest if which == "ingest" else synth.stack.transform
    definition, substitutions = synth.definition(machine)
    assert asl.check(definition) == []
    assert asl.placeholders(definition) == set(substitutions)


def test_the_checker_catches_broken_definitions() -> None:
    good = state_machines.ingest_definition(max_concurrency=2, max_polls=3)
    bad = json.loads(json.dumps(good))
    bad["States"]["FetchSlices"]["ItemProcessor"]["States"]["Ready?"]["Default"] = "Nowhere"
    bad["States"]["Summarize"]["Type"] = "Lambda"
    errors = asl.check(bad)
    assert any("'Nowhere' is not a state" in e for e in errors)
    assert any("unknown Type 'Lambda'" in e for e in errors)
    with pytest.raises(ValueError):
        state_machines.ingest_definition(max_concurrency=2, max_polls=0)


def test_ingest_map_is_bounded_and_retries_throttling(synth: Synth) -> None:
    definition, _ = synth.definition(synth.stack.ingest)
    fetch = definition["States"]["FetchSlices"]
    assert fetch["Type"] == "Map" and fetch["MaxConcurrency"] == 8  # [run] concurrency default
    assert fetch["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    role = synth.logical(synth.stack.ingest.role)
    starts = [s for s in _policy_statements(synth, role) if s["Action"] == "states:StartExecution"]
    assert "stateMachine:amzlake-a-ingest" in json.dumps(starts[0]["Resource"])
    for name in ("CreateReport", "CheckReportStatus", "DownloadReport"):
        state = fetch["ItemProcessor"]["States"][name]
        throttled = [r for r in state["Retry"] if r["ErrorEquals"] == ["ThrottledError"]]
        assert throttled and throttled[0]["BackoffRate"] > 1 and throttled[0]["MaxAttempts"] >= 3
        assert state["Catch"][0]["Next"] == state_machines.SLICE_FAILED


def _ingest_handler(calls: dict[str, int], *, waiting_forever: set[str], crash: set[str],
                    ready_after: int) -> asl.Handler:
    def handler(resource: str, params: dict[str, Any]) -> Any:
        fn = params["FunctionName"].strip("${}").removesuffix("FunctionArn")
        payload = params["Payload"]
        calls[fn] = calls.get(fn, 0) + 1
        key = payload.get("slice_key")
        if fn == "Plan":
            assert payload == {"backfill": {"start": "2026-01-01", "end": "2026-01-31"}}
            out = {"run_id": "r1", "slices": [{"slice_key": k} for k in ("a", "b", "c")]}
        elif fn == "CreateReport":
            if key in crash:
                raise asl.TaskFailed("Sandbox.Timedout", "Task timed out after 120 s")
            out = {"slice_key": key, "state": "requested", "wait_seconds": 30, "polls": 0}
        elif fn == "CheckReportStatus":
            polls = payload["polls"] + 1
            ready = key not in waiting_forever and polls >= ready_after
            out = {"slice_key": key, "status": "ready" if ready else "waiting",
                   "wait_seconds": 60, "polls": polls}
        elif fn == "DownloadReport":
            out = {"slice_key": key, "state": "downloaded", "raw_key": f"raw/ads/{key}.json.gz"}
        else:
            out = {"counts": {r.get("status", r.get("state")): 1 for r in payload["results"]},
                   "failed": [r for r in payload["results"] if r.get("status") == "failed"],
                   "results": payload["results"]}
        return {"Payload": out}

    return handler


def test_ingest_run_downloads_waits_out_and_hands_failures_to_summarize(synth: Synth) -> None:
    definition, _ = synth.definition(synth.stack.ingest)
    calls: dict[str, int] = {}
    handler = _ingest_handler(calls, waiting_forever={"b"}, crash={"c"}, ready_after=2)
    end, out = asl.run(definition, {"backfill": {"start": "2026-01-01", "end": "2026-01-31"}},
                       handler)
    assert end == "End"
    by_key = {r["slice_key"]: r for r in out["results"]}
    assert by_key["a"]["state"] == "downloaded"
    # b is still being made after MAX_POLLS checks: left to the next run, not waited for forever.
    assert by_key["b"] == {"slice_key": "b", "status": "waited_out", "polls": MAX_POLLS}
    # c's Lambda died: the failure reaches Summarize with its error, so it can be recorded.
    assert by_key["c"] == {"slice_key": "c", "status": "failed", "error": "Sandbox.Timedout",
                           "cause": "Task timed out after 120 s"}
    assert out["failed"] == [by_key["c"]]
    assert calls["CheckReportStatus"] == 2 + MAX_POLLS  # a: 2 checks, b: MAX_POLLS
    assert calls["DownloadReport"] == 1 and calls["Summarize"] == 1


def test_ingest_slices_already_finished_end_without_polling(synth: Synth) -> None:
    definition, _ = synth.definition(synth.stack.ingest)
    processor = definition["States"]["FetchSlices"]["ItemProcessor"]
    calls: list[str] = []

    def handler(resource: str, params: dict[str, Any]) -> Any:
        calls.append(params["FunctionName"])
        return {"Payload": {"slice_key": "x", "state": "downloaded", "wait_seconds": 0,
                            "polls": 0}}

    end, _ = asl.run(processor, {"slice_key": "x", "run_id": "r"}, handler)
    assert end == "Succeed" and calls == ["${CreateReportFunctionArn}"]


def _transform_handler(published: list[dict[str, Any]], *, gate: dict[str, Any],
                       glue_fails: bool = False) -> asl.Handler:
    def handler(resource: str, params: dict[str, Any]) -> Any:
        if resource.endswith("lambda:invoke.waitForTaskToken"):
            assert params["Payload"]["task_token"] == "token-UpdateMetadata"
            assert params["Payload"]["time"] == "2026-01-02T06:00:00Z"
            assert params["Payload"]["detail"]["object"]["key"].startswith("raw/ads/")
            return gate
        if resource.endswith("glue:startJobRun.sync"):
            assert params["Arguments"]["--summary_out"] == \
                "s3://${CuratedBucketName}/glue-summaries/exec-1.json"
            if glue_fails:
                raise asl.TaskFailed("States.TaskFailed", "Glue job run failed")
            return {"Id": "jr_1", "JobRunState": "SUCCEEDED", "ExecutionTime": 42}
        if resource.endswith("s3:getObject"):
            assert params == {"Bucket": "${CuratedBucketName}",
                              "Key": "glue-summaries/exec-1.json"}
            return {"Body": json.dumps({"slices_curated": 3, "quarantined": []})}
        if resource.endswith("sns:publish"):
            published.append(params)
            return {"MessageId": "m1"}
        raise AssertionError(resource)

    return handler


EVENT = {"time": "2026-01-02T06:00:00Z", "detail": {"bucket": {"name": "raw-bucket"},
                    "object": {"key": "raw/ads/x/2026-01-01/1/k/t.json.gz", "size": 10}}}


def test_transform_superseded_execution_ends_quietly(synth: Synth) -> None:
    definition, _ = synth.definition(synth.stack.transform)
    published: list[dict[str, Any]] = []
    trace: list[str] = []
    end, _ = asl.run(definition, EVENT, _transform_handler(published, gate={"superseded": True}),
                     trace=trace)
    assert end == "Succeed" and published == [] and "RunTransform" not in trace


def test_transform_released_runs_glue_and_publishes_its_summary(synth: Synth) -> None:
    definition, _ = synth.definition(synth.stack.transform)
    published: list[dict[str, Any]] = []
    end, _ = asl.run(definition, EVENT, _transform_handler(published, gate={"go": True}))
    assert end == "End"
    assert len(published) == 1
    message = published[0]["Message"]
    assert published[0]["TopicArn"] == "${TopicArn}"
    assert message["job_run_state"] == "SUCCEEDED"
    assert message["summary"] == {"run": {"slices_curated": 3, "quarantined": []}}


def test_transform_glue_failure_notifies_and_fails_the_execution(synth: Synth) -> None:
    definition, _ = synth.definition(synth.stack.transform)
    published: list[dict[str, Any]] = []
    end, out = asl.run(definition, EVENT, _transform_handler(published, gate={"go": True},
                                                             glue_fails=True))
    assert end == "Fail" and out["Error"] == "TransformFailed"
    assert published[0]["Message"]["event"] == "transform_failed"


def test_transform_state_machine_may_run_only_its_glue_job(synth: Synth) -> None:
    role = synth.logical(synth.stack.transform.role)
    glue = [s for s in _policy_statements(synth, role) if "glue:StartJobRun" in s["Action"]]
    assert len(glue) == 1 and "job/" in json.dumps(glue[0]["Resource"])
    assert synth.logical(synth.stack.topic) in json.dumps(_policy_statements(synth, role))


def test_schedule_starts_ingest_with_configurable_expression(synth: Synth) -> None:
    params = synth.data["Parameters"]
    assert params["ScheduleExpression"]["Default"] == "cron(0 6 * * ? *)"
    assert {"ScheduleTimezone", "ScheduleState", "NotificationEmail"} <= set(params)
    synth.t.has_resource_properties("AWS::Scheduler::Schedule", {
        "ScheduleExpression": {"Ref": "ScheduleExpression"},
        "ScheduleExpressionTimezone": {"Ref": "ScheduleTimezone"},
        "Target": Match.object_like({
            "Arn": {"Ref": synth.logical(synth.stack.ingest)},
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [synth.logical(synth.stack.dlq), "Arn"]}},
        })})


def test_rules_start_transform_on_raw_documents_and_release_every_minute(synth: Synth) -> None:
    raw = {"Ref": synth.logical(synth.stack.raw)}
    synth.t.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                         "detail": {"bucket": {"name": [raw]},
                                    "object": {"key": [{"prefix": "raw/ads/"},
                                                       {"prefix": "raw/vendor/"}]}}},
        "Targets": [Match.object_like({"Arn": {"Ref": synth.logical(synth.stack.transform)}})]})
    synth.t.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": "rate(1 minute)",
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [
            synth.logical(synth.stack.functions["ReleaseQuiet"]), "Arn"]}})]})


# ---- Glue, SNS, alarms ------------------------------------------------------------------------


def test_glue_database_job_and_role(synth: Synth) -> None:
    synth.t.has_resource_properties("AWS::Glue::Database", {
        "DatabaseInput": Match.object_like({"Name": "amzlake_a"})})
    job = next(iter(synth.resources("AWS::Glue::Job").values()))["Properties"]
    assert job["GlueVersion"] == "5.0"
    assert job["Command"]["Name"] == "glueetl"
    assert json.dumps(job["Command"]["ScriptLocation"]).endswith('/glue/glue_job.py"]]}')
    args = job["DefaultArguments"]
    assert args["--datalake-formats"] == "iceberg"
    assert json.dumps(args["--additional-python-modules"]).endswith(
        '/glue/amzlake-glue-wheels.zip"]]}')
    assert args["--python-modules-installer-option"] == "--no-index"  # never PyPI
    assert {"--config_json", "--warehouse", "--database", "--TempDir"} <= set(args)
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert job["Role"] == {"Fn::GetAtt": [synth.logical(synth.stack.glue_role), "Arn"]}
    security = next(iter(synth.resources("AWS::Glue::SecurityConfiguration").values()))
    enc = security["Properties"]["EncryptionConfiguration"]
    assert enc["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert enc["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    synth.t.resource_count_is("Custom::CDKBucketDeployment", 1)


def test_topic_is_encrypted_and_email_subscription_is_optional(synth: Synth) -> None:
    synth.t.has_resource_properties("AWS::SNS::Topic", {
        "KmsMasterKeyId": {"Fn::GetAtt": [synth.logical(synth.stack.key), "Arn"]}})
    subs = synth.resources("AWS::SNS::Subscription")
    assert len(subs) == 1
    sub = next(iter(subs.values()))
    assert sub["Condition"] == "HasNotificationEmail"
    assert sub["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}


def test_alarms_on_failed_executions_quarantine_and_dead_letters(synth: Synth) -> None:
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms.values())
    assert {"ApproximateNumberOfMessagesVisible", "ExecutionsFailed",
            "QuarantinedDocuments"} <= set(metrics)
    assert metrics.count("ExecutionsFailed") == 2
    topic = {"Ref": synth.logical(synth.stack.topic)}
    assert all(a["Properties"]["AlarmActions"] == [topic] for a in alarms.values())
    failed = {json.dumps(a["Properties"]["Dimensions"]) for a in alarms.values()
              if a["Properties"]["MetricName"] == "ExecutionsFailed"}
    assert failed == {json.dumps([{"Name": "StateMachineArn", "Value": {"Ref": synth.logical(m)}}])
                      for m in (synth.stack.ingest, synth.stack.transform)}
    synth.t.has_resource_properties("AWS::Logs::MetricFilter", {
        "MetricTransformations": [Match.object_like({"MetricName": "QuarantinedDocuments",
                                                     "MetricNamespace": "amzlake/a"})]})
    synth.t.has_resource_properties("AWS::Events::Rule", {"EventPattern": Match.object_like({
        "detail": {"bucket": Match.any_value(),
                   "object": {"key": [{"prefix": "raw/quarantine/"}]}}})})


# ---- cfn-lint, cdk-nag, context -------------------------------------------------------------


def test_cfn_lint_is_clean(synth: Synth) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    # W3005 (redundant DependsOn) only flags the belt-and-braces DependsOn CDK itself writes
    # from every Lambda to its role; the template is otherwise linted in full.
    done = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--",
                           str(synth.template_path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cdk_nag_passes_and_every_acknowledgement_has_a_reason(synth: Synth) -> None:
    report = synth.outdir / "validation-report.json"
    if report.is_file():
        data = json.loads(report.read_text())
        assert all(not p["violations"] for p in data["pluginReports"])
    metadata = json.loads(synth.metadata_path.read_text())
    acknowledged = {rule: reason for entries in metadata.values() for e in entries
                    if e["type"] == "aws:cdk:acknowledged-rules"
                    for rule, reason in e["data"].items()}
    assert len(acknowledged) > 20
    assert all("AwsSolutions-" in rule for rule in acknowledged)
    assert all(len(reason) > 30 for reason in acknowledged.values())


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bare")
    bucket = s3.Bucket(stack, "Plain")  # no access logs, no TLS policy: AwsSolutions-S1, S10
    Validations.of(bucket).acknowledge(Acknowledgment(
        id="AwsSolutions-S1", reason="the way the stack acknowledges a finding, checked here"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert "AwsSolutions-S10" in rules
    assert "AwsSolutions-S1" not in rules  # acknowledged


def test_config_secrets_must_be_the_stacks_secrets(tmp_path: Path) -> None:
    secret = "secretsmanager:amzlake/lwa/default#client_secret"
    base = {"lwa": {"default": {"client_id": "amzn1.x", "client_secret": secret}},
            "ads": {"refresh_token": "env:ADS_TOKEN"}}
    with pytest.raises(ConfigError, match=r"ads\.refresh_token must be secretsmanager"):
        check_config(base, "amzlake")
    base["ads"]["refresh_token"] = "secretsmanager:other/secret#token"
    with pytest.raises(ConfigError, match="amzlake/lwa/default"):
        check_config(base, "amzlake")
    base["ads"]["refresh_token"] = "secretsmanager:amzlake/lwa/default#ads_refresh_token"
    assert check_config(base, "amzlake").ads.enabled


def test_context_values_are_checked(tmp_path: Path) -> None:
    inline = json.dumps({"lwa": {"default": {
        "client_id": "amzn1.x", "client_secret": "secretsmanager:amzlake/lwa/default#cs"}},
        "ads": {"refresh_token": "secretsmanager:amzlake/lwa/default#rt"}})
    settings = settings_from_context({"amzlake:config": inline, "amzlake:maxConcurrency": "12"})
    assert settings.max_concurrency == 12 and settings.lwa_apps == ("default",)
    with pytest.raises(ConfigError, match=r"maxConcurrency: 0 not in 1\.\.256"):
        settings_from_context({"amzlake:config": inline, "amzlake:maxConcurrency": "0"})
    with pytest.raises(ConfigError, match="amzlake:config: missing"):
        settings_from_context({})
    with pytest.raises(ConfigError, match="file not found"):
        settings_from_context({"amzlake:config": str(tmp_path / "nope.toml")})


def test_stack_sets_the_environment_the_handlers_read(synth: Synth) -> None:
    handlers = pytest.importorskip("amzlake.aws.handlers")
    from amzlake.aws import config_source

    env = synth.data["Resources"][synth.logical(synth.stack.functions["UpdateMetadata"])][
        "Properties"]["Environment"]["Variables"]
    from amzlake.aws.stack import ENV_GLUE_DATABASE

    assert {handlers.ENV_TRANSFORM_TABLE, handlers.ENV_RAW_KMS_KEY_ID, handlers.ENV_RATE_TABLE,
            config_source.ENV_CONFIG_JSON, ENV_GLUE_DATABASE} == set(env)
    assert env[ENV_GLUE_DATABASE] == "amzlake_a"  # the environment's database, as the job's
    gate_key = synth.data["Resources"][synth.logical(synth.stack.transform_table)][
        "Properties"]["KeySchema"]
    assert gate_key == [{"AttributeName": "pk", "KeyType": "HASH"}]  # transform_gate's key


def test_services_that_write_encrypted_targets_may_use_the_key(synth: Synth) -> None:
    policy = synth.data["Resources"][synth.logical(synth.stack.key)]["Properties"]["KeyPolicy"]
    principals = {json.dumps(s["Principal"].get("Service")) for s in policy["Statement"]}
    # Alarms publish to the topic, rules dead-letter to the queue, Glue encrypts its logs.
    assert '"cloudwatch.amazonaws.com"' in principals
    assert '"events.amazonaws.com"' in principals
    assert any("logs." in p for p in principals)


def test_aws_synth_cli_refuses_bad_context_in_one_line(tmp_path: Path) -> None:
    def synth_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "amzlake", "aws", "synth", "--output",
                               str(tmp_path / "out"), *args], capture_output=True, text=True,
                              check=False, cwd=tmp_path)

    bad = synth_cli("--context", "amzlake:config")
    assert bad.returncode == 2
    assert bad.stderr == ("amzlake: error: --context 'amzlake:config': must be KEY=VALUE, "
                          "e.g. amzlake:config=aws.toml\n")
    (tmp_path / "aws.toml").write_text(CONFIG.replace("secretsmanager:amzlake/lwa/default#ads",
                                                      "env:ADS"))
    wrong = synth_cli("--context", "amzlake:config=aws.toml")
    assert wrong.returncode == 2
    assert "ads.refresh_token must be secretsmanager:<name>#<key>" in wrong.stderr
    assert not list((tmp_path / "out").glob("*.template.json"))


def test_outputs_name_what_the_deploy_steps_need(synth: Synth) -> None:
    outputs = synth.data["Outputs"]
    assert {"RawBucketName", "CuratedBucketName", "LedgerTableName", "IngestStateMachineArn",
            "TransformStateMachineArn", "GlueJobName", "GlueDatabaseName",
            "TopicArn"} <= set(outputs)
    secrets = sorted(json.dumps(o["Value"]) for k, o in outputs.items() if k.startswith("Secret"))
    assert len(secrets) == 2
