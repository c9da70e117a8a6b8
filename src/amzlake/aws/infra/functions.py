"""The handlers' Lambda functions: one code asset, one function per step, each with its own role
(only what its step needs is granted, by the construct that owns the step) and log group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import AssetHashType, BundlingOptions, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from amzlake.aws.bundling import ASSET_EXCLUDES, UvBundling, source_hash
from amzlake.aws.infra.nag import ack, logical

HANDLER_MODULE = "amzlake.aws.handlers"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


@dataclass(frozen=True)
class FunctionSpec:
    """One handler: its function name in amzlake.aws.handlers, memory (MB) and timeout (s)."""

    handler: str
    memory: int
    timeout_s: int


def lambda_code(root: Path) -> lambda_.Code:
    """The one code asset every handler runs: the package and its locked dependencies (uv)."""
    return lambda_.Code.from_asset(
        str(root),
        exclude=ASSET_EXCLUDES,
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(root, "lambda"),
        bundling=BundlingOptions(
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            local=UvBundling(root, "lambda"),
            command=["bash", "-c", "echo 'amzlake bundles with uv on this machine' >&2; exit 1"],
        ),
    )


def handler_function(
    scope: Construct,
    name: str,
    spec: FunctionSpec,
    *,
    code: lambda_.Code,
    environment: dict[str, str],
    dlq: sqs.IQueue,
) -> lambda_.Function:
    """A Python 3.12 function for one handler, with its own role, log group and dead letters."""
    log_group = logs.LogGroup(
        scope, f"{name}Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
    )
    # Its own role, with only what this handler needs (granted by the caller) and its log group.
    role = iam.Role(
        scope,
        f"{name}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"amzlake {spec.handler} Lambda",
    )
    fn = lambda_.Function(
        scope,
        name,
        runtime=lambda_.Runtime.PYTHON_3_12,
        code=code,
        handler=f"{HANDLER_MODULE}.{spec.handler}",
        memory_size=spec.memory,
        timeout=Duration.seconds(spec.timeout_s),
        environment=environment,
        role=role,
        log_group=log_group,
        architecture=lambda_.Architecture.X86_64,
        on_failure=destinations.SqsDestination(dlq),
        retry_attempts=2,
        description=f"amzlake {spec.handler}",
    )
    log_group.grant_write(role)
    ack(
        fn,
        {
            "AwsSolutions-L1": "Python 3.12 is the runtime the Lambda bundle is "
            "built for (amzlake.aws.bundling) and tested with."
        },
    )
    return fn


def invoke_findings(*functions: lambda_.IFunction) -> dict[str, str]:
    """Acknowledgements for Lambda invoke grants, which cover each function's versions."""
    return {
        f"AwsSolutions-IAM5[Resource::<{logical(fn)}.Arn>:*]": (
            "CDK's grantInvoke also allows the function's versions and aliases (<arn>:*)."
        )
        for fn in functions
    }
