"""The CDK stack of amzlake's AWS runtime (the guidance's architecture; DESIGN "two runtimes").

The stack only composes; each concern is a construct of its own (amzlake.aws.infra), readable
and testable alone:

- StorageAndKeys (infra/storage.py): the KMS key, buckets, tables, secrets, Glue database;
- Notifications (infra/notifications.py): the topic and the dead-letter queue;
- Ingest (infra/ingest.py): the step Lambdas, the ingest state machine, the schedule;
- Transform (infra/transform.py): the gate Lambdas, the Glue job, the transform state machine
  and the rules that start and release it;
- Operations (infra/operations.py): the quarantine log, alarms, the dashboard;
- QueryAccess (infra/query.py): the Athena workgroup, its results bucket, the reader role.

The state machines' ASL comes from amzlake.aws.state_machines (used in infra/machines.py only);
how the code assets are made is in amzlake.aws.bundling; the context it reads in
amzlake.aws.settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnCondition, CfnOutput, CfnParameter, Fn, Stack
from constructs import Construct

from amzlake.aws.infra.functions import lambda_code
from amzlake.aws.infra.ingest import Ingest, Schedule
from amzlake.aws.infra.nag import (
    KMS_GRANT_FINDINGS,
    KMS_REASON,
    S3_DELETE_FINDINGS,
    S3_PUT_FINDINGS,
    S3_READ_FINDINGS,
    S3_REASON,
    ack,
    logical,
)
from amzlake.aws.infra.notifications import Notifications
from amzlake.aws.infra.operations import Operations
from amzlake.aws.infra.query import QueryAccess
from amzlake.aws.infra.storage import StorageAndKeys
from amzlake.aws.infra.transform import Transform
from amzlake.aws.settings import LAMBDA_LAKE_DIR, StackSettings, ship_secret_refs
from amzlake.config import NotifyConfig

# Environment variables the handlers read besides the config (amzlake.aws.handlers).
ENV_CONFIG_JSON = "AMZLAKE_CONFIG_JSON"
ENV_TRANSFORM_TABLE = "AMZLAKE_TRANSFORM_TABLE"
ENV_RATE_TABLE = "AMZLAKE_RATE_TABLE"
# The raw zone's writes name the stack's key explicitly (the bucket default encrypts with it too).
ENV_RAW_KMS_KEY_ID = "AMZLAKE_RAW_KMS_KEY_ID"
# The environment's Glue database (the Glue job gets it as --database).
ENV_GLUE_DATABASE = "AMZLAKE_GLUE_DATABASE"


class AmzlakeStack(Stack):
    """Everything the AWS runtime needs, deployable with `cdk deploy`.

    The attributes below the constructs (key, raw, ingest, ...) name their main resources, so
    that callers and tests need not know which construct holds what.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        *,
        project_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.root = project_root
        self._parameters()
        self.storage = StorageAndKeys(self, "Storage", settings)
        self.notifications = Notifications(
            self,
            "Notifications",
            key=self.storage.key,
            email=self.notification_email.value_as_string,
            has_email=self.has_email,
        )
        code = lambda_code(project_root)
        env = self.lambda_environment()
        self.ingestion = Ingest(
            self,
            "Ingest",
            settings=settings,
            storage=self.storage,
            notifications=self.notifications,
            code=code,
            environment=env,
            schedule=Schedule(
                self.schedule_expression.value_as_string,
                self.schedule_timezone.value_as_string,
                self.schedule_state.value_as_string,
            ),
        )
        self.transformation = Transform(
            self,
            "Transform",
            settings=settings,
            storage=self.storage,
            notifications=self.notifications,
            code=code,
            environment=env,
            glue_config_json=self.config_json(for_glue=True),
            project_root=project_root,
        )
        self.operations = Operations(
            self,
            "Operations",
            settings=settings,
            storage=self.storage,
            notifications=self.notifications,
            ingest=self.ingestion,
            transform=self.transformation,
        )
        self.query = QueryAccess(self, "Query", settings=settings, storage=self.storage)
        self._names()
        self._outputs()

    def _names(self) -> None:
        """Short names for the main resources of each construct."""
        st, n = self.storage, self.notifications
        self.key, self.access_logs = st.key, st.access_logs
        self.raw, self.curated, self.artifacts = st.raw, st.curated, st.artifacts
        self.ledger, self.transform_table, self.rate_table = (
            st.ledger,
            st.transform_table,
            st.rate_table,
        )
        self.secrets, self.glue_database = st.secrets, st.glue_database
        self.topic, self.dlq = n.topic, n.dlq
        self.functions = {**self.ingestion.functions, **self.transformation.functions}
        self.ingest = self.ingestion.state_machine
        self.transform = self.transformation.state_machine
        self.schedule = self.ingestion.schedule
        self.glue_job, self.glue_role = self.transformation.glue_job, self.transformation.glue_role
        self.alarms = self.operations.alarms

    # ---- Parameters --------------------------------------------------------------------------

    def _parameters(self) -> None:
        self.schedule_expression = CfnParameter(
            self,
            "ScheduleExpression",
            type="String",
            default="cron(0 6 * * ? *)",
            description="When the ingest runs: an EventBridge Scheduler expression "
            "(cron(...), rate(...) or at(...)).",
        )
        self.schedule_timezone = CfnParameter(
            self,
            "ScheduleTimezone",
            type="String",
            default="UTC",
            description="IANA time zone the schedule expression is read in, e.g. America/New_York.",
        )
        self.schedule_state = CfnParameter(
            self,
            "ScheduleState",
            type="String",
            default="ENABLED",
            allowed_values=["ENABLED", "DISABLED"],
            description="Whether the schedule runs.",
        )
        self.notification_email = CfnParameter(
            self,
            "NotificationEmail",
            type="String",
            default="",
            description="An e-mail address subscribed to the notifications topic (empty: none).",
        )
        self.has_email = CfnCondition(
            self,
            "HasNotificationEmail",
            expression=Fn.condition_not(
                Fn.condition_equals(self.notification_email.value_as_string, "")
            ),
        )

    # ---- What the code is told ----------------------------------------------------------------

    def config_json(self, *, for_glue: bool = False) -> str:
        """The config the handlers and the job read (AMZLAKE_CONFIG_JSON): user's + storage."""
        st = self.storage
        # The config names the stack's secrets by reference; the code gets their ARNs.
        data: dict[str, Any] = ship_secret_refs(dict(self.settings.config), st.secret_arns)
        data["storage"] = {
            "raw": st.raw_url,
            "ledger": f"dynamodb://{st.ledger.table_name}",
            "lake": LAMBDA_LAKE_DIR,
        }
        notify: dict[str, Any] = {"log": True}
        # [notify] sns is the AWS runtime's notifier (amzlake.notify.SnsNotifier).
        if "sns" in NotifyConfig.model_fields:
            notify["sns"] = self.notifications.topic.topic_arn
        data["notify"] = notify
        return self.to_json_string(data)

    def lambda_environment(self) -> dict[str, str]:
        """The environment every handler gets (amzlake.aws.handlers reads it)."""
        st = self.storage
        return {
            ENV_CONFIG_JSON: self.config_json(),
            ENV_TRANSFORM_TABLE: st.transform_table.table_name,
            ENV_RATE_TABLE: st.rate_table.table_name,
            ENV_RAW_KMS_KEY_ID: st.key.key_arn,
            ENV_GLUE_DATABASE: st.database_name,
        }

    # ---- Outputs ----------------------------------------------------------------------------

    def _outputs(self) -> None:
        """What the README's steps and `amzlake status` need after a deploy."""
        for name, value, what in (
            ("RawBucketName", self.raw.bucket_name, "raw zone bucket (documents under raw/)"),
            ("CuratedBucketName", self.curated.bucket_name, "curated bucket (Iceberg warehouse)"),
            ("LedgerTableName", self.ledger.table_name, "ledger table (dynamodb://<name>)"),
            ("IngestStateMachineArn", self.ingest.state_machine_arn, "ingest state machine"),
            (
                "TransformStateMachineArn",
                self.transform.state_machine_arn,
                "transform state machine",
            ),
            ("GlueJobName", self.glue_job.ref, "Glue transform job"),
            ("GlueDatabaseName", self.storage.database_name, "Glue database of the curated tables"),
            ("TopicArn", self.topic.topic_arn, "notifications topic"),
            ("KeyArn", self.key.key_arn, "KMS key of every encrypted resource"),
            ("Environment", self.settings.env, "environment every physical name derives from"),
            ("AthenaWorkGroup", self.query.workgroup.ref, "Athena workgroup (encrypted results)"),
            ("ReaderRoleArn", self.query.reader.role_arn, "role that may query the tables"),
            ("DashboardName", self.settings.prefix, "CloudWatch dashboard"),
        ):
            CfnOutput(self, name, value=value, description=f"amzlake {what}")
        for app, secret in zip(self.settings.lwa_apps, self.secrets, strict=True):
            CfnOutput(
                self,
                f"Secret{secret.node.id}",
                value=secret.secret_arn,
                description=f"Secrets Manager secret of LWA app '{app}' (put its values here)",
            )


def _provider_findings(stack: AmzlakeStack) -> dict[str, str]:
    """What CDK's BucketDeployment and bucket-notification providers are flagged for, and why."""
    artifacts = logical(stack.storage.artifacts)
    provider = "CDK's own provider function (BucketDeployment / S3 bucket notifications)"
    return {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]": f"{provider} logs with the basic execution role; "
        "amzlake's own roles have no managed policy.",
        "AwsSolutions-L1": f"{provider} picks its runtime with the CDK version.",
        **dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON),
        **dict.fromkeys(
            S3_READ_FINDINGS + S3_PUT_FINDINGS + S3_DELETE_FINDINGS,
            S3_REASON,
        ),
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
        "<AWS::AccountId>-<AWS::Region>/*]": "BucketDeployment reads its source zip from the "
        "CDK bootstrap asset bucket.",
        f"AwsSolutions-IAM5[Resource::<{artifacts}.Arn>/*]": "BucketDeployment syncs the Glue "
        "artifacts (it prunes old files).",
    }


def stack_wide_suppressions(stack: AmzlakeStack) -> None:
    """Acknowledgements on the constructs CDK adds by itself (providers), each with its reason."""
    findings = _provider_findings(stack)
    for child in stack.node.children:
        if child.node.id.startswith(("Custom::CDKBucketDeployment", "BucketNotificationsHandler")):
            ack(child, findings)
