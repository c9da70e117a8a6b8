"""Ingest: the step Lambdas (plan, create, check, download, summarize), the ingest state machine
that orders them (a distributed Map over the run's slices) and the schedule that starts it."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from amzlake.aws.infra.functions import FunctionSpec, handler_function, invoke_findings
from amzlake.aws.infra.machines import ingest_definition, logged_state_machine
from amzlake.aws.infra.nag import (
    S3_PUT_FINDINGS,
    S3_READ_FINDINGS,
    S3_REASON,
    ack,
    kms_grant_findings,
    logical,
)
from amzlake.aws.infra.notifications import Notifications
from amzlake.aws.infra.storage import StorageAndKeys
from amzlake.aws.settings import RAW_PREFIX, StackSettings

# DownloadReport streams a document in parts (the S3 store buffers 8 MiB parts, two in flight).
INGEST_FUNCTIONS: dict[str, FunctionSpec] = {
    "Plan": FunctionSpec("plan", 512, 300),
    "CreateReport": FunctionSpec("create_report", 256, 120),
    "CheckReportStatus": FunctionSpec("check_report_status", 256, 120),
    "DownloadReport": FunctionSpec("download_report", 1024, 900),
    "Summarize": FunctionSpec("summarize", 256, 120),
}
# The steps that call Amazon: they read the LWA secrets and share the rate budget.
CALLS_AMAZON = ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport")


@dataclass(frozen=True)
class Schedule:
    """When the ingest runs (CloudFormation parameter values, or literal ones)."""

    expression: str
    timezone: str
    state: str


class Ingest(Construct):
    """The ingest steps' functions, the ingest state machine and its schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        storage: StorageAndKeys,
        notifications: Notifications,
        code: lambda_.Code,
        environment: dict[str, str],
        schedule: Schedule,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.functions = {
            name: handler_function(
                self, name, spec, code=code, environment=environment, dlq=notifications.dlq
            )
            for name, spec in INGEST_FUNCTIONS.items()
        }
        self._grant(storage, notifications)
        self._state_machine()
        self._schedule(notifications, schedule)

    def _grant(self, storage: StorageAndKeys, notifications: Notifications) -> None:
        f = self.functions
        for fn in f.values():
            storage.ledger.grant_read_write_data(fn)
        for name in CALLS_AMAZON:
            for secret in storage.secrets:
                secret.grant_read(f[name])
            storage.rate_table.grant_read_write_data(f[name])
        # Check reads a FATAL report's error document; Download writes the raw zone.
        # Raw is append-only (DESIGN invariant 2): read and put, never delete.
        for name in ("CheckReportStatus", "DownloadReport"):
            storage.raw.grant_read(f[name], f"{RAW_PREFIX}/*")
            storage.raw.grant_put(f[name], f"{RAW_PREFIX}/*")
        notifications.topic.grant_publish(f["Summarize"])
        raw_objects = f"Resource::<{logical(storage.raw)}.Arn>/{RAW_PREFIX}/*"
        for name, fn in f.items():
            findings = kms_grant_findings()
            if name in ("CheckReportStatus", "DownloadReport"):
                findings.update(dict.fromkeys(S3_READ_FINDINGS + S3_PUT_FINDINGS, S3_REASON))
                findings[f"AwsSolutions-IAM5[{raw_objects}]"] = (
                    "Documents are stored under raw/<source>/<type>/<date>/..., one key each; "
                    "the grant is the raw zone prefix only."
                )
            ack(fn.role or fn, findings)  # type: ignore[arg-type]

    def _state_machine(self) -> None:
        f = self.functions
        name = self.settings.ingest_machine_name
        self.state_machine = logged_state_machine(
            self,
            "Ingest",
            ingest_definition(self.settings),
            {f"{step}FunctionArn": fn.function_arn for step, fn in f.items()},
            name,
        )
        machine = self.state_machine
        for fn in f.values():
            fn.grant_invoke(machine)
        stack = Stack.of(self)
        # A distributed Map starts its child executions on the machine itself (AWS: "IAM
        # policies for using Distributed Map states"); names, not tokens, to avoid a cycle.
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="stateMachine",
                        resource_name=name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{name}/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        ack(
            machine,
            {
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f"<AWS::AccountId>:execution:{name}/*]": (
                    "The distributed Map describes and stops its own child executions, whose "
                    "names Step Functions chooses."
                ),
                **invoke_findings(*f.values()),
            },
        )

    def _schedule(self, notifications: Notifications, schedule: Schedule) -> None:
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        self.state_machine.grant_start_execution(role)
        notifications.dlq.grant_send_messages(role)
        ack(role, kms_grant_findings())
        self.schedule = scheduler.CfnSchedule(
            self,
            "IngestSchedule",
            name=self.settings.schedule_name,
            description="amzlake: start the ingest state machine",
            schedule_expression=schedule.expression,
            schedule_expression_timezone=schedule.timezone,
            state=schedule.state,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.state_machine.state_machine_arn,
                role_arn=role.role_arn,
                input="{}",
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=5
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=notifications.dlq.queue_arn
                ),
            ),
        )
