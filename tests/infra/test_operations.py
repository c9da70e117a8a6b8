"""Operations and query access: the alarms a team relies on (timed-out executions, sustained
throttling, Glue run failures, the LWA client secret's age), the dashboard, the Athena workgroup
with encrypted results, the optional Lake Formation grants; the secret-age monitor run on moto;
and two constructs synthesized alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template
from moto import mock_aws

from amzlake.aws.app import FEATURE_FLAGS
from amzlake.aws.infra import secret_age
from amzlake.aws.infra.operations import SECRET_ALARM_DAYS, THROTTLE_PER_PERIOD, THROTTLE_PERIODS
from amzlake.aws.infra.query import QueryAccess
from amzlake.aws.infra.storage import StorageAndKeys
from amzlake.aws.settings import StackSettings
from tests.infra.synth import Synth


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {a["Properties"]["AlarmName"]: a["Properties"]
            for a in synth.resources("AWS::CloudWatch::Alarm").values()}


def test_timed_out_executions_of_both_machines_alarm(synth: Synth) -> None:
    alarms = _alarms(synth)
    for name, machine in (("Ingest", synth.stack.ingest), ("Transform", synth.stack.transform)):
        a = alarms[f"amzlake-a-{name}ExecutionsTimedOut"]
        assert a["MetricName"] == "ExecutionsTimedOut" and a["Threshold"] == 1
        assert a["Dimensions"] == [{"Name": "StateMachineArn",
                                    "Value": {"Ref": synth.logical(machine)}}]


def test_sustained_throttling_alarms_from_the_steps_throttled_errors(synth: Synth) -> None:
    a = _alarms(synth)["amzlake-a-SustainedThrottling"]
    assert (a["Namespace"], a["MetricName"], a["Statistic"]) == ("amzlake/a", "ThrottledSteps",
                                                                 "Sum")
    assert a["Threshold"] == THROTTLE_PER_PERIOD
    assert a["EvaluationPeriods"] == a["DatapointsToAlarm"] == THROTTLE_PERIODS
    filters = [f["Properties"] for f in synth.resources("AWS::Logs::MetricFilter").values()
               if f["Properties"]["MetricTransformations"][0]["MetricName"] == "ThrottledSteps"]
    # One per step that calls Amazon, on that step's own log group.
    groups = {json.dumps(f["LogGroupName"]) for f in filters}
    expected = {json.dumps(synth.props(synth.stack.functions[n])["LoggingConfig"]["LogGroup"])
                for n in ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport")}
    assert groups == expected
    assert all("ThrottledError" in f["FilterPattern"] and "[ERROR]" in f["FilterPattern"]
               for f in filters)


def test_glue_runs_that_fail_notify_and_alarm(synth: Synth) -> None:
    rule_id, rule = next((k, r) for k, r in synth.resources("AWS::Events::Rule").items()
                         if r["Properties"].get("EventPattern", {}).get("source") == ["aws.glue"])
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Glue Job State Change"]
    assert pattern["detail"] == {"jobName": ["amzlake-a-transform"],
                                 "state": ["FAILED", "TIMEOUT", "ERROR"]}
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": synth.logical(synth.stack.topic)}
    a = _alarms(synth)["amzlake-a-GlueJobRunsFailed"]
    assert (a["Namespace"], a["MetricName"]) == ("AWS/Events", "TriggeredRules")
    assert a["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]


def test_each_lwa_secret_has_an_age_alarm_before_the_180_days(synth: Synth) -> None:
    alarms = _alarms(synth)
    ages = {n: a for n, a in alarms.items() if a["MetricName"] == "LwaClientSecretAgeDays"}
    assert set(ages) == {"amzlake-a-LwaSecretAgeDefault", "amzlake-a-LwaSecretAgeVendorApp"}
    assert {a["Threshold"] for a in ages.values()} == {SECRET_ALARM_DAYS}
    assert {a["Dimensions"][0]["Value"] for a in ages.values()} == {"default", "vendor-app"}
    synth.t.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 day)"})


def test_the_dashboard_shows_executions_throttling_and_alarms(synth: Synth) -> None:
    (board,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    assert board["Properties"]["DashboardName"] == "amzlake-a"
    parts = board["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(p if isinstance(p, str) else "<token>" for p in parts)
    for shown in ("ExecutionsTimedOut", "ThrottledSteps", "QuarantinedDocuments",
                  "LwaClientSecretAgeDays", "TriggeredRules", '"type":"alarm"'):
        assert shown in body, shown


def test_athena_workgroup_encrypts_results_with_the_key(synth: Synth) -> None:
    (wg,) = synth.resources("AWS::Athena::WorkGroup").values()
    config = wg["Properties"]["WorkGroupConfiguration"]
    assert wg["Properties"]["Name"] == "amzlake-a"
    assert config["EnforceWorkGroupConfiguration"] is True
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": {"Fn::GetAtt": [synth.logical(synth.stack.key), "Arn"]}}
    results = synth.stack.query.results
    assert synth.logical(results) in json.dumps(result["OutputLocation"])
    rule = synth.props(results)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


def test_lake_formation_grants_are_opt_in_and_read_only(synth: Synth, synth_b: Synth) -> None:
    assert synth.resources("AWS::LakeFormation::PrincipalPermissions") == {}
    grants = [g["Properties"] for g in
              synth_b.resources("AWS::LakeFormation::PrincipalPermissions").values()]
    reader = {"Fn::GetAtt": [synth_b.logical(synth_b.stack.query.reader), "Arn"]}
    assert all(g["Principal"] == {"DataLakePrincipalIdentifier": reader} for g in grants)
    by_kind = {next(iter(g["Resource"])): g for g in grants}
    assert by_kind["Database"]["Permissions"] == ["DESCRIBE"]
    assert by_kind["Table"]["Resource"]["Table"]["DatabaseName"] == "amzlake_b"
    assert sorted(by_kind["Table"]["Permissions"]) == ["DESCRIBE", "SELECT"]
    assert all(g["PermissionsWithGrantOption"] == [] for g in grants)


def test_the_secret_age_monitor_measures_from_the_rotation_tag(monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sm = boto3.client("secretsmanager")
        rotated = (datetime.now(UTC) - timedelta(days=160)).date().isoformat()
        tagged = sm.create_secret(Name="a", SecretString="{}", Tags=[
            {"Key": secret_age.TAG, "Value": rotated}])["ARN"]
        fresh = sm.create_secret(Name="b", SecretString="{}")["ARN"]
        monkeypatch.setenv("SECRETS", json.dumps({"default": tagged, "vendor-app": fresh}))
        monkeypatch.setenv("NAMESPACE", "amzlake/t")
        assert secret_age.handler({}, None) == {"default": 160, "vendor-app": 0}
        metrics = boto3.client("cloudwatch").list_metrics(Namespace="amzlake/t")["Metrics"]
        assert {m["Dimensions"][0]["Value"] for m in metrics} == {"default", "vendor-app"}
        assert {m["MetricName"] for m in metrics} == {"LwaClientSecretAgeDays"}


def test_storage_and_query_constructs_synthesize_alone() -> None:
    # Read and tested alone: the two constructs in a stack of their own, nothing else.
    app = App(context=FEATURE_FLAGS)
    stack = Stack(app, "Alone")
    settings = StackSettings(config={"lwa": {"x": {}}}, env="solo")
    storage = StorageAndKeys(stack, "Storage", settings)
    QueryAccess(stack, "Query", settings=settings, storage=storage)
    t = Template.from_stack(stack)
    resources = t.to_json()["Resources"].values()
    assert "AWS::StepFunctions::StateMachine" not in {r["Type"] for r in resources}
    # No amzlake code: the one function is CDK's own, turning on the raw bucket's EventBridge.
    handlers = [r["Properties"]["Handler"] for r in resources
                if r["Type"] == "AWS::Lambda::Function"]
    assert not [h for h in handlers if h.startswith("amzlake.")]
    t.resource_count_is("AWS::SecretsManager::Secret", 1)
    t.has_resource_properties("AWS::Glue::Database", {
        "DatabaseInput": Match.object_like({"Name": "amzlake_solo"})})
    t.has_resource_properties("AWS::Athena::WorkGroup", {"Name": "amzlake-solo"})


def test_secret_age_code_fits_inline() -> None:
    # Lambda takes inline Python code up to 4 KB (CloudFormation's ZipFile).
    path = Path(secret_age.__file__)
    assert len(path.read_bytes()) < 4096
