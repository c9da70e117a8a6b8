"""Environments: every physical name derives from the environment's name, so two environments
deploy side by side in one account and region, and a redeploy after `cdk destroy` finds no kept
resource under a name it wants (kept secrets are named by CloudFormation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amzlake.aws.settings import StackSettings, settings_from_context, ship_secret_refs
from amzlake.cli import app as cli_app
from amzlake.errors import ConfigError
from tests.infra.synth import CONFIG, Synth

# Properties that hold a resource's physical name (CloudFormation's "Name type" properties the
# stack sets), at the top of a resource's Properties.
NAME_PROPERTIES = {
    "Name", "AliasName", "BucketName", "TableName", "FunctionName", "RoleName", "TopicName",
    "QueueName", "StateMachineName", "LogGroupName", "AlarmName", "DashboardName",
    "SecurityConfiguration", "WorkGroup", "MetricNamespace",
}


def _text(value: Any) -> str | None:
    """A name as text, CloudFormation tokens shown as <token> (None for a name that is only a
    token: CloudFormation's own, unique per stack)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        text = sep.join(p if isinstance(p, str) else "<token>" for p in parts)
        return None if text.replace("<token>", "").strip(sep + "/:-") == "" else text
    return None


def physical_names(synth: Synth) -> dict[str, set[str]]:
    """name -> where it is set: every physical name the template sets, and the stack's own."""
    names: dict[str, set[str]] = {synth.stack.stack_name: {"stack"}}
    for logical_id, resource in synth.data["Resources"].items():
        props = resource.get("Properties", {})
        found = [props.get(k) for k in NAME_PROPERTIES]
        found.append(props.get("DatabaseInput", {}).get("Name"))
        for metric in props.get("MetricTransformations", []):
            found.append(metric.get("MetricNamespace"))
        for value in found:
            text = _text(value)
            if text:
                names.setdefault(text, set()).add(f"{resource['Type']} {logical_id}")
    return names


def test_two_environments_share_no_physical_name(synth: Synth, synth_b: Synth) -> None:
    a, b = physical_names(synth), physical_names(synth_b)
    # What each environment names itself, not CloudFormation: enough kinds to mean something.
    assert {"stack", "AWS::Glue::Database", "AWS::Glue::Job", "AWS::StepFunctions::StateMachine",
            "AWS::KMS::Alias", "AWS::Scheduler::Schedule", "AWS::CloudWatch::Alarm",
            "AWS::Logs::LogGroup", "AWS::Glue::SecurityConfiguration"} <= {
        where.split()[0] for places in a.values() for where in places}
    shared = {n: (a[n], b[n]) for n in set(a) & set(b)}
    assert shared == {}
    assert synth.stack.stack_name == "Amzlake-a" and synth_b.stack.stack_name == "Amzlake-b"
    assert {"amzlake_a", "amzlake-a-ingest", "alias/amzlake-a"} <= set(a)


def test_the_job_and_the_lambdas_get_the_environments_database(synth: Synth) -> None:
    job = next(iter(synth.resources("AWS::Glue::Job").values()))["Properties"]
    assert job["DefaultArguments"]["--database"] == "amzlake_a"
    assert synth.data["Outputs"]["GlueDatabaseName"]["Value"] == "amzlake_a"
    for fn in synth.stack.functions.values():
        assert synth.props(fn)["Environment"]["Variables"]["AMZLAKE_GLUE_DATABASE"] == "amzlake_a"


def test_only_what_rebuilds_itself_is_deleted_and_nothing_kept_has_a_fixed_name(
        synth: Synth) -> None:
    # A redeploy after `cdk destroy` must not meet a kept resource under a name it wants.
    kept = {k: r for k, r in synth.data["Resources"].items()
            if r.get("DeletionPolicy") == "Retain"}
    assert {r["Type"] for r in kept.values()} == {
        "AWS::KMS::Key", "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SecretsManager::Secret"}
    for logical_id, resource in kept.items():
        props = resource["Properties"]
        assert not (set(props) & NAME_PROPERTIES), logical_id
    alias = next(iter(synth.resources("AWS::KMS::Alias").values()))
    assert alias.get("DeletionPolicy", "Delete") == "Delete"


def test_environment_names_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    base = {"amzlake:config": str(config)}
    assert settings_from_context(base).stack_name == "Amzlake-dev"
    prod = settings_from_context({**base, "amzlake:env": "eu-prod"})
    assert (prod.stack_name, prod.glue_database, prod.transform_machine_name) == (
        "Amzlake-eu-prod", "amzlake_eu_prod", "amzlake-eu-prod-transform")
    for bad in ("Prod", "1st", "a_b", "a--b", "b-", "x" * 21):
        with pytest.raises(ConfigError, match="amzlake:env"):
            settings_from_context({**base, "amzlake:env": bad})
    assert StackSettings(config={}, env="x", stack_name="Mine").stack_name == "Mine"


def test_secret_references_are_shipped_as_the_stacks_secrets() -> None:
    data = {"lwa": {"default": {"client_secret": "secretsmanager:amzlake/lwa/default#cs"}},
            "ads": {"refresh_token": "secretsmanager:amzlake/lwa/default#ads.rt"},
            "other": ["secretsmanager:elsewhere/x#k", "env:TOKEN", 3]}
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:LwaSecretDefault-abc-Q1w2E3"
    shipped = ship_secret_refs(data, {"amzlake/lwa/default": arn})
    assert shipped == {"lwa": {"default": {"client_secret": f"secretsmanager:{arn}#cs"}},
                       "ads": {"refresh_token": f"secretsmanager:{arn}#ads.rt"},
                       "other": ["secretsmanager:elsewhere/x#k", "env:TOKEN", 3]}


def test_aws_synth_env_option_names_the_stack_and_its_resources(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    (tmp_path / "aws.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(cli_app, ["aws", "synth", "--env", "prod", "--output", "out",
                                        "--context", "amzlake:config=aws.toml"])
    assert done.exit_code == 0, done.output
    template = json.loads((tmp_path / "out" / "Amzlake-prod.template.json").read_text())
    machines = sorted(r["Properties"]["StateMachineName"] for r in template["Resources"].values()
                      if r["Type"] == "AWS::StepFunctions::StateMachine")
    assert machines == ["amzlake-prod-ingest", "amzlake-prod-transform"]


def test_data_catalog_encryption_is_opt_in_and_uses_the_stacks_key(synth: Synth,
                                                                    synth_b: Synth) -> None:
    assert synth.resources("AWS::Glue::DataCatalogEncryptionSettings") == {}
    (settings,) = synth_b.resources("AWS::Glue::DataCatalogEncryptionSettings").values()
    props = settings["Properties"]
    assert props["CatalogId"] == {"Ref": "AWS::AccountId"}  # one per account and region
    assert props["DataCatalogEncryptionSettings"]["EncryptionAtRest"] == {
        "CatalogEncryptionMode": "SSE-KMS",
        "SseAwsKmsKeyId": {"Fn::GetAtt": [synth_b.logical(synth_b.stack.key), "Arn"]}}
    # The job reads and writes the encrypted catalog: it holds the key's data-key actions.
    role = synth_b.logical(synth_b.stack.glue_role)
    statements = [s for p in synth_b.resources("AWS::IAM::Policy").values()
                  if {"Ref": role} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    key_arn = {"Fn::GetAtt": [synth_b.logical(synth_b.stack.key), "Arn"]}
    kms = {a for s in statements if s["Resource"] == key_arn
           for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"} <= kms


def test_cfn_lint_is_clean_with_every_opt_in(synth_b: Synth) -> None:
    # As test_stack's cfn-lint test, on environment b (cdk-nag ran when it was synthesized).
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--",
                           str(synth_b.template_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
