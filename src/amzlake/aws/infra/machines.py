"""The stack's one use of amzlake.aws.state_machines: each machine's ASL and what fills its
`${Name}` placeholders, and the logged, traced StateMachine that runs it."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from amzlake.aws import state_machines
from amzlake.aws.infra.functions import LOG_RETENTION
from amzlake.aws.infra.nag import ack
from amzlake.aws.settings import StackSettings

# Where each Glue run writes its JSON summary (the transform machine reads it back).
SUMMARY_PREFIX = state_machines.SUMMARY_PREFIX


def ingest_definition(settings: StackSettings) -> dict[str, Any]:
    """The ingest machine's ASL (placeholders: state_machines.INGEST_PLACEHOLDERS)."""
    return state_machines.ingest_definition(
        max_concurrency=settings.max_concurrency, max_polls=settings.max_polls
    )


def transform_definition() -> dict[str, Any]:
    """The transform machine's ASL (placeholders: state_machines.TRANSFORM_PLACEHOLDERS)."""
    return state_machines.transform_definition()


def logged_state_machine(
    scope: Construct,
    name: str,
    definition: dict[str, Any],
    substitutions: dict[str, str],
    machine_name: str,
) -> sfn.StateMachine:
    """A Standard state machine named `machine_name`, logging everything and traced (X-Ray)."""
    log_group = logs.LogGroup(
        scope,
        f"{name}StateMachineLogs",
        retention=LOG_RETENTION,
        log_group_name=f"/aws/vendedlogs/states/{machine_name}",
        removal_policy=RemovalPolicy.DESTROY,
    )
    machine = sfn.StateMachine(
        scope,
        f"{name}StateMachine",
        state_machine_name=machine_name,
        definition_body=sfn.DefinitionBody.from_string(json.dumps(definition, indent=2)),
        definition_substitutions=substitutions,
        tracing_enabled=True,
        logs=sfn.LogOptions(
            destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
        ),
    )
    ack(
        machine,
        {
            "AwsSolutions-IAM5[Resource::*]": (
                "Step Functions log delivery (logs:CreateLogDelivery etc.) and X-Ray accept "
                "only resource '*' (AWS: 'IAM policies for logging to CloudWatch Logs')."
            )
        },
    )
    return machine
