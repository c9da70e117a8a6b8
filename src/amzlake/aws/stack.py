"""The CDK stack of amzlake's AWS runtime (the guidance's architecture; DESIGN "two runtimes").

One customer-managed KMS key encrypts everything that takes one: the raw, curated and artifacts
buckets, the ledger and transform tables, the LWA secrets, the SNS topic, the SQS dead-letter
queue and Glue's logs and bookmarks. The state machines' ASL is in amzlake.aws.state_machines;
how the code assets are made is in amzlake.aws.bundling; the context it reads in
amzlake.aws.settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    AssetHashType,
    Aws,
    BundlingOptions,
    BundlingOutput,
    CfnCondition,
    CfnOutput,
    CfnParameter,
    DockerImage,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from amzlake.aws import state_machines
from amzlake.aws.bundling import ASSET_EXCLUDES, UvBundling, source_hash, wheel_name
from amzlake.aws.settings import LAMBDA_LAKE_DIR, RAW_PREFIX, StackSettings
from amzlake.config import NotifyConfig

HANDLER_MODULE = "amzlake.aws.handlers"
# Environment variables the handlers read besides the config (amzlake.aws.handlers).
ENV_CONFIG_JSON = "AMZLAKE_CONFIG_JSON"
ENV_TRANSFORM_TABLE = "AMZLAKE_TRANSFORM_TABLE"
ENV_RATE_TABLE = "AMZLAKE_RATE_TABLE"
# The raw zone's writes name the stack's key explicitly (the bucket default encrypts with it too).
ENV_RAW_KMS_KEY_ID = "AMZLAKE_RAW_KMS_KEY_ID"
# Sources whose documents start a transform (the raw zone's first key level; quarantine is not one).
RAW_SOURCES = ("ads", "vendor")
GLUE_DATABASE = "amzlake"
GLUE_ARTIFACTS_PREFIX = "glue"
GLUE_SUMMARIES_PREFIX = "glue-summaries"
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

# cdk-nag findings that CDK's own grant methods produce, acknowledged where they occur.
KMS_GRANT_FINDINGS = [
    "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
    "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
]
KMS_REASON = (
    "CDK's KMS grants name the key's data-key actions with a wildcard "
    "(GenerateDataKey*, ReEncrypt*); the resource is the stack's one key."
)
S3_READ_FINDINGS = [
    "AwsSolutions-IAM5[Action::s3:GetObject*]",
    "AwsSolutions-IAM5[Action::s3:GetBucket*]",
    "AwsSolutions-IAM5[Action::s3:List*]",
]
S3_PUT_FINDINGS = ["AwsSolutions-IAM5[Action::s3:Abort*]"]
S3_REASON = (
    "CDK's bucket grants use action wildcards (GetObject*, List*, Abort*: multipart "
    "uploads); the resources are this stack's buckets and prefixes only."
)


class _Fn:
    """One handler: name, memory, timeout and what it may touch."""

    def __init__(self, handler: str, memory: int, timeout_s: int) -> None:
        self.handler = handler
        self.memory = memory
        self.timeout = Duration.seconds(timeout_s)


# DownloadReport streams a document in parts (the S3 store buffers 8 MiB parts, two in flight).
FUNCTIONS: dict[str, _Fn] = {
    "Plan": _Fn("plan", 512, 300),
    "CreateReport": _Fn("create_report", 256, 120),
    "CheckReportStatus": _Fn("check_report_status", 256, 120),
    "DownloadReport": _Fn("download_report", 1024, 900),
    "Summarize": _Fn("summarize", 256, 120),
    "UpdateMetadata": _Fn("update_metadata", 256, 60),
    "ReleaseQuiet": _Fn("release_quiet", 256, 60),
}


def _ack(construct: Construct, reasons: dict[str, str]) -> None:
    """Acknowledge cdk-nag findings on `construct` and below, each with why it does not apply."""
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=finding, reason=why) for finding, why in reasons.items())
    )


class AmzlakeStack(Stack):
    """Everything issue 5 lists, deployable with `cdk deploy`."""

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
        self._key()
        self._buckets()
        self._tables()
        self._secrets()
        self._notifications()
        self._functions()
        self._glue()
        self._state_machines()
        self._triggers()
        self._alarms()
        self._outputs()

    def _logical(self, construct: Construct) -> str:
        """The CloudFormation logical id of an L2 construct's resource (as cdk-nag names it)."""
        child = construct.node.default_child
        return str(self.resolve(self.get_logical_id(child)))  # type: ignore[arg-type]

    def _invoke_findings(self, *names: str) -> dict[str, str]:
        """Acknowledgements for Lambda invoke grants, which cover each function's versions."""
        return {
            f"AwsSolutions-IAM5[Resource::<{self._logical(self.functions[n])}.Arn>:*]": (
                "CDK's grantInvoke also allows the function's versions and aliases (<arn>:*)."
            )
            for n in names
        }

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

    # ---- KMS, S3, DynamoDB, Secrets Manager -----------------------------------------------------

    def _key(self) -> None:
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            alias=f"alias/{self.settings.stack_name.lower()}",
            description="amzlake: raw, curated, ledger, secrets, topic, queues",
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the KMS-encrypted topic (AWS: "Amazon SNS topic encryption
        # ... CloudWatch alarms"): the service needs the key to encrypt the message.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        # EventBridge delivers failed rule targets to the KMS-encrypted dead-letter queue as the
        # events service itself (EventBridge user guide, "Using dead-letter queues": an SSE-KMS
        # queue needs a customer managed key whose policy allows events.amazonaws.com).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        # Glue's security configuration encrypts its CloudWatch logs with this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                        )
                    }
                },
            )
        )

    def _bucket(self, name: str, **extra: Any) -> s3.Bucket:
        return s3.Bucket(
            self,
            name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{name.lower()}/",
            removal_policy=RemovalPolicy.RETAIN,
            **extra,
        )

    def _buckets(self) -> None:
        # Server access logs only support SSE-S3 on the target bucket (S3 user guide, "Enabling
        # Amazon S3 server access logging"), so this one bucket is not KMS-encrypted.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
        )
        _ack(
            self.access_logs,
            {
                "AwsSolutions-S1": "This is the access-log bucket itself; "
                "logging it into itself would loop."
            },
        )
        abort_uploads = s3.LifecycleRule(
            id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
        )
        # Raw is append-only and the record of what Amazon served: objects are kept, but move to
        # Standard-IA once the restatement window has passed; old versions only exist if someone
        # overwrote or deleted a raw object by hand, and go after 90 days.
        self.raw = self._bucket(
            "Raw",
            event_bridge_enabled=True,
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="raw-to-infrequent-access",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(self.settings.raw_ia_days),
                        )
                    ],
                    noncurrent_version_expiration=Duration.days(90),
                ),
            ],
        )
        self.curated = self._bucket(
            "Curated",
            lifecycle_rules=[
                abort_uploads,
                # Iceberg replaces files on every commit; superseded versions need not stay forever.
                s3.LifecycleRule(
                    id="old-versions", noncurrent_version_expiration=Duration.days(30)
                ),
                s3.LifecycleRule(id="glue-temp", prefix="glue-temp/", expiration=Duration.days(7)),
            ],
        )
        self.artifacts = self._bucket(
            "Artifacts",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="old-versions", noncurrent_version_expiration=Duration.days(30)
                ),
            ],
        )
        self.raw_url = f"s3://{self.raw.bucket_name}/{RAW_PREFIX}"
        self.warehouse = f"s3://{self.curated.bucket_name}/warehouse"

    def _tables(self) -> None:
        common: dict[str, Any] = dict(
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The ledger's key is the slice key (amzlake.storage.dynamo_ledger).
        self.ledger = dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name="slice_key", type=dynamodb.AttributeType.STRING),
            **common,
        )
        # The transform gate: the last raw arrival and the waiting execution's task token.
        self.transform_table = dynamodb.Table(
            self,
            "TransformState",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            **common,
        )
        # The rate budget the ingest steps share (amzlake.aws.rate_budget): a few small items that
        # expire once idle, rebuilt from nothing at any time, so neither kept nor backed up.
        self.rate_table = dynamodb.Table(
            self,
            "RateBudget",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute="expires",
            removal_policy=RemovalPolicy.DESTROY,
        )
        _ack(
            self.rate_table,
            {
                "AwsSolutions-DDB3": "Token buckets that refill by themselves: nothing to "
                "recover to a point in time."
            },
        )

    def _secrets(self) -> None:
        self.secrets: list[secretsmanager.Secret] = []
        for app in self.settings.lwa_apps:
            # No value in the template: Secrets Manager generates a throwaway one that the user
            # replaces (put-secret-value) with {"client_secret": ..., "<token key>": ...}.
            secret = secretsmanager.Secret(
                self,
                f"LwaSecret{''.join(p.capitalize() for p in app.replace('-', '_').split('_'))}",
                secret_name=self.settings.secret_name(app),
                encryption_key=self.key,
                description=f"amzlake LWA app '{app}': JSON with client_secret and refresh tokens",
                removal_policy=RemovalPolicy.RETAIN,
            )
            _ack(
                secret,
                {
                    "AwsSolutions-SMG4": "LWA client secrets and refresh tokens are "
                    "issued by Amazon's developer console; no Lambda can rotate them."
                },
            )
            self.secrets.append(secret)

    # ---- SNS, queues ------------------------------------------------------------------------

    def _notifications(self) -> None:
        self.topic = sns.Topic(
            self,
            "Notifications",
            master_key=self.key,
            enforce_ssl=True,
            display_name="amzlake notifications",
        )
        sub = sns.CfnSubscription(
            self,
            "NotificationEmailSubscription",
            protocol="email",
            topic_arn=self.topic.topic_arn,
            endpoint=self.notification_email.value_as_string,
        )
        sub.cfn_options.condition = self.has_email
        self.dlq = sqs.Queue(
            self,
            "FailedInvocations",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        _ack(
            self.dlq,
            {
                "AwsSolutions-SQS3": "This queue is the dead-letter destination of "
                "the Lambdas, rules and schedule; it needs no DLQ of its own."
            },
        )

    # ---- Lambdas ----------------------------------------------------------------------------

    def config_json(self, *, for_glue: bool = False) -> str:
        """The config the handlers and the job read (AMZLAKE_CONFIG_JSON): user's + storage."""
        data: dict[str, Any] = dict(self.settings.config)
        data["storage"] = {
            "raw": self.raw_url,
            "ledger": f"dynamodb://{self.ledger.table_name}",
            "lake": LAMBDA_LAKE_DIR,
        }
        notify: dict[str, Any] = {"log": True}
        # [notify] sns is the AWS runtime's notifier (amzlake.notify.SnsNotifier).
        if "sns" in NotifyConfig.model_fields:
            notify["sns"] = self.topic.topic_arn
        data["notify"] = notify
        return self.to_json_string(data)

    def _code(self) -> lambda_.Code:
        return lambda_.Code.from_asset(
            str(self.root),
            exclude=ASSET_EXCLUDES,
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=source_hash(self.root, "lambda"),
            bundling=BundlingOptions(
                image=lambda_.Runtime.PYTHON_3_12.bundling_image,
                local=UvBundling(self.root, "lambda"),
                command=[
                    "bash",
                    "-c",
                    "echo 'amzlake bundles with uv on this machine' >&2; exit 1",
                ],
            ),
        )

    def _functions(self) -> None:
        code = self._code()
        self.functions: dict[str, lambda_.Function] = {}
        env = {
            ENV_CONFIG_JSON: self.config_json(),
            ENV_TRANSFORM_TABLE: self.transform_table.table_name,
            ENV_RATE_TABLE: self.rate_table.table_name,
            ENV_RAW_KMS_KEY_ID: self.key.key_arn,
        }
        for name, spec in FUNCTIONS.items():
            log_group = logs.LogGroup(
                self, f"{name}Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
            )
            # Its own role, with only what this handler needs (granted below) and its log group.
            role = iam.Role(
                self,
                f"{name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"amzlake {spec.handler} Lambda",
            )
            fn = lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_12,
                code=code,
                handler=f"{HANDLER_MODULE}.{spec.handler}",
                memory_size=spec.memory,
                timeout=spec.timeout,
                environment=env,
                role=role,
                log_group=log_group,
                architecture=lambda_.Architecture.X86_64,
                on_failure=destinations.SqsDestination(self.dlq),
                retry_attempts=2,
                description=f"amzlake {spec.handler}",
            )
            log_group.grant_write(role)
            _ack(
                fn,
                {
                    "AwsSolutions-L1": "Python 3.12 is the runtime the Lambda bundle is "
                    "built for (amzlake.aws.bundling) and tested with."
                },
            )
            self.functions[name] = fn
        ingest_steps = ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport", "Summarize")
        for name in ingest_steps:
            fn = self.functions[name]
            self.ledger.grant_read_write_data(fn)
        for name in ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport"):
            for secret in self.secrets:
                secret.grant_read(self.functions[name])
            self.rate_table.grant_read_write_data(self.functions[name])
        # Check reads a FATAL report's error document; Download writes the raw zone.
        # Raw is append-only (DESIGN invariant 2): read and put, never delete.
        for name in ("CheckReportStatus", "DownloadReport"):
            self.raw.grant_read(self.functions[name], f"{RAW_PREFIX}/*")
            self.raw.grant_put(self.functions[name], f"{RAW_PREFIX}/*")
        self.topic.grant_publish(self.functions["Summarize"])
        for name in ("UpdateMetadata", "ReleaseQuiet"):
            fn = self.functions[name]
            self.transform_table.grant_read_write_data(fn)
            # Task tokens of the transform state machine only (a fixed name breaks the cycle
            # state machine -> function -> role policy -> state machine).
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "states:SendTaskSuccess",
                        "states:SendTaskFailure",
                        "states:SendTaskHeartbeat",
                    ],
                    resources=[self._transform_arn()],
                )
            )
        raw_objects = f"Resource::<{self._logical(self.raw)}.Arn>/{RAW_PREFIX}/*"
        for name, fn in self.functions.items():
            findings = dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON)
            if name in ("CheckReportStatus", "DownloadReport"):
                findings.update(dict.fromkeys(S3_READ_FINDINGS + S3_PUT_FINDINGS, S3_REASON))
                findings[f"AwsSolutions-IAM5[{raw_objects}]"] = (
                    "Documents are stored under raw/<source>/<type>/<date>/..., one key each; "
                    "the grant is the raw zone prefix only."
                )
            _ack(fn.role or fn, findings)  # type: ignore[arg-type]

    # ---- Glue -------------------------------------------------------------------------------

    def _glue(self) -> None:
        s = self.settings
        self.glue_database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=GLUE_DATABASE,
                description="amzlake curated Iceberg tables",
                location_uri=f"{self.warehouse}/{GLUE_DATABASE}.db",
            ),
        )
        source = s3deploy.Source.asset(
            str(self.root),
            exclude=ASSET_EXCLUDES,
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=source_hash(self.root, "glue"),
            bundling=BundlingOptions(
                image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                local=UvBundling(self.root, "glue"),
                output_type=BundlingOutput.NOT_ARCHIVED,
                command=[
                    "bash",
                    "-c",
                    "echo 'amzlake bundles with uv on this machine' >&2; exit 1",
                ],
            ),
        )
        # Deployed by name: pip (--additional-python-modules) refuses a wheel renamed to a hash.
        self.glue_artifacts = s3deploy.BucketDeployment(
            self,
            "GlueArtifacts",
            sources=[source],
            destination_bucket=self.artifacts,
            destination_key_prefix=f"{GLUE_ARTIFACTS_PREFIX}/",
            retain_on_delete=False,
            memory_limit=512,
        )
        self.glue_role = iam.Role(
            self,
            "GlueRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="amzlake Glue transform job",
        )
        self.raw.grant_read(self.glue_role)
        self.raw.grant_put(self.glue_role, f"{RAW_PREFIX}/quarantine/*")  # quarantine records
        self.curated.grant_read_write(self.glue_role)
        self.curated.grant_delete(self.glue_role, "warehouse/*")  # Iceberg expires its old files
        self.artifacts.grant_read(self.glue_role, f"{GLUE_ARTIFACTS_PREFIX}/*")
        self.ledger.grant_read_write_data(self.glue_role)
        self.topic.grant_publish(self.glue_role)
        self.key.grant_encrypt_decrypt(self.glue_role)
        catalog = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        self.glue_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:GetDatabases",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                ],
                resources=[
                    f"{catalog}:catalog",
                    f"{catalog}:database/{GLUE_DATABASE}",
                    f"{catalog}:table/{GLUE_DATABASE}/*",
                ],
            )
        )
        self.glue_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws-glue/*"
                ],
            )
        )
        self.glue_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        glue_findings = dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON)
        glue_findings.update(
            dict.fromkeys(
                S3_READ_FINDINGS
                + S3_PUT_FINDINGS
                + ["AwsSolutions-IAM5[Action::s3:DeleteObject*]"],
                S3_REASON,
            )
        )
        for bucket, prefix in (
            (self.raw, "*"),
            (self.raw, f"{RAW_PREFIX}/quarantine/*"),
            (self.curated, "*"),
            (self.curated, "warehouse/*"),
            (self.artifacts, f"{GLUE_ARTIFACTS_PREFIX}/*"),
        ):
            glue_findings[
                f"AwsSolutions-IAM5[Resource::<{self._logical(bucket)}.Arn>/{prefix}]"
            ] = (
                "The job reads every raw document, writes quarantine records, and owns the "
                "Iceberg warehouse (data and metadata files it names itself) in the curated bucket."
            )
        glue_findings[
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:"
            f"<AWS::AccountId>:table/{GLUE_DATABASE}/*]"
        ] = "Tables are created by the transform as report types appear, all in its one database."
        glue_findings[
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
            "<AWS::AccountId>:log-group:/aws-glue/*]"
        ] = "Glue writes to its own /aws-glue/* log groups (continuous logging)."
        glue_findings["AwsSolutions-IAM5[Resource::*]"] = (
            "cloudwatch:PutMetricData has no resource type; the statement is limited to the "
            "Glue namespace by condition."
        )
        _ack(self.glue_role, glue_findings)
        security = glue.CfnSecurityConfiguration(
            self,
            "GlueSecurity",
            name=f"{s.stack_name.lower()}-glue",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=self.key.key_arn
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=self.key.key_arn
                    )
                ],
            ),
        )
        artifacts = f"s3://{self.artifacts.bucket_name}/{GLUE_ARTIFACTS_PREFIX}"
        self.glue_job = glue.CfnJob(
            self,
            "TransformJob",
            name=f"{s.stack_name.lower()}-transform",
            role=self.glue_role.role_arn,
            glue_version="5.0",
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=f"{artifacts}/glue_job.py"
            ),
            worker_type="G.1X",
            number_of_workers=s.glue_workers,
            timeout=240,
            max_retries=0,
            security_configuration=security.name,
            # One run at a time: each run curates every pending slice; another waits (ASL retry).
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            default_arguments={
                "--job-language": "python",
                "--datalake-formats": "iceberg",
                "--additional-python-modules": f"{artifacts}/{wheel_name(self.root)}",
                "--enable-glue-datacatalog": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--TempDir": f"s3://{self.curated.bucket_name}/glue-temp/",
                "--config_json": self.config_json(for_glue=True),
                "--warehouse": self.warehouse,
                "--database": GLUE_DATABASE,
            },
            description="amzlake transform: downloaded raw documents into the Iceberg tables",
        )
        self.glue_job.node.add_dependency(security)
        self.glue_job.node.add_dependency(self.glue_artifacts)
        self.glue_job.node.add_dependency(self.glue_database)

    # ---- State machines ---------------------------------------------------------------------

    def _transform_name(self) -> str:
        return f"{self.settings.stack_name}-transform"

    def _transform_arn(self) -> str:
        return self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self._transform_name(),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _state_machine(
        self,
        name: str,
        definition: dict[str, Any],
        substitutions: dict[str, str],
        machine_name: str,
    ) -> sfn.StateMachine:
        log_group = logs.LogGroup(
            self,
            f"{name}StateMachineLogs",
            retention=LOG_RETENTION,
            log_group_name=f"/aws/vendedlogs/states/{machine_name}",
            removal_policy=RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            f"{name}StateMachine",
            state_machine_name=machine_name,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition, indent=2)),
            definition_substitutions=substitutions,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        _ack(
            machine,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Step Functions log delivery (logs:CreateLogDelivery etc.) and X-Ray accept "
                    "only "
                    "resource '*' (AWS: 'IAM policies for logging to CloudWatch Logs')."
                )
            },
        )
        return machine

    def _state_machines(self) -> None:
        f = self.functions
        s = self.settings
        self.ingest = self._state_machine(
            "Ingest",
            state_machines.ingest_definition(
                max_concurrency=s.max_concurrency, max_polls=s.max_polls
            ),
            {
                "PlanFunctionArn": f["Plan"].function_arn,
                "CreateReportFunctionArn": f["CreateReport"].function_arn,
                "CheckReportStatusFunctionArn": f["CheckReportStatus"].function_arn,
                "DownloadReportFunctionArn": f["DownloadReport"].function_arn,
                "SummarizeFunctionArn": f["Summarize"].function_arn,
            },
            f"{s.stack_name}-ingest",
        )
        for name in ("Plan", "CreateReport", "CheckReportStatus", "DownloadReport", "Summarize"):
            f[name].grant_invoke(self.ingest)
        # A distributed Map starts its child executions on the machine itself (AWS: "IAM
        # policies for using Distributed Map states"); names, not tokens, to avoid a cycle.
        ingest_name = f"{s.stack_name}-ingest"
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="stateMachine",
                        resource_name=ingest_name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[
                    self.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{ingest_name}/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        _ack(
            self.ingest,
            {
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                f"<AWS::AccountId>:execution:{ingest_name}/*]": (
                    "The distributed Map describes and stops its own child executions, whose "
                    "names Step Functions chooses."
                )
            },
        )
        _ack(
            self.ingest,
            self._invoke_findings(
                "Plan", "CreateReport", "CheckReportStatus", "DownloadReport", "Summarize"
            ),
        )
        self.transform = self._state_machine(
            "Transform",
            state_machines.transform_definition(),
            {
                "UpdateMetadataFunctionArn": f["UpdateMetadata"].function_arn,
                "GlueJobName": self.glue_job.ref,
                "TopicArn": self.topic.topic_arn,
                "CuratedBucketName": self.curated.bucket_name,
            },
            self._transform_name(),
        )
        f["UpdateMetadata"].grant_invoke(self.transform)
        self.topic.grant_publish(self.transform)
        self.curated.grant_read(self.transform, f"{GLUE_SUMMARIES_PREFIX}/*")
        transform_findings = self._invoke_findings("UpdateMetadata")
        transform_findings.update(dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON))
        transform_findings.update(dict.fromkeys(S3_READ_FINDINGS, S3_REASON))
        transform_findings[
            f"AwsSolutions-IAM5[Resource::<{self._logical(self.curated)}.Arn>/"
            f"{GLUE_SUMMARIES_PREFIX}/*]"
        ] = "Each Glue run writes its summary under glue-summaries/<execution name>.json."
        _ack(self.transform, transform_findings)
        job_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:job/{self.glue_job.ref}"
        self.transform.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:StartJobRun",
                    "glue:GetJobRun",
                    "glue:GetJobRuns",
                    "glue:BatchStopJobRun",
                ],
                resources=[job_arn],
            )
        )

    # ---- Schedule, rules --------------------------------------------------------------------

    def _triggers(self) -> None:
        role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        self.ingest.grant_start_execution(role)
        self.dlq.grant_send_messages(role)
        _ack(role, dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON))
        self.schedule = scheduler.CfnSchedule(
            self,
            "IngestSchedule",
            description="amzlake: start the ingest state machine",
            schedule_expression=self.schedule_expression.value_as_string,
            schedule_expression_timezone=self.schedule_timezone.value_as_string,
            state=self.schedule_state.value_as_string,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.ingest.state_machine_arn,
                role_arn=role.role_arn,
                input="{}",
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=5
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.dlq.queue_arn
                ),
            ),
        )
        # A new raw document (not a quarantine record) starts a transform execution.
        self.raw_created = events.Rule(
            self,
            "RawObjectCreated",
            description="amzlake: new raw document -> transform",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.raw.bucket_name]},
                    "object": {"key": [{"prefix": f"{RAW_PREFIX}/{src}/"} for src in RAW_SOURCES]},
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    self.transform,
                    dead_letter_queue=self.dlq,
                    retry_attempts=5,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
        self.release_rule = events.Rule(
            self,
            "ReleaseQuietEveryMinute",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            description="amzlake: release the transform once the raw zone has been quiet",
            targets=[
                targets.LambdaFunction(
                    self.functions["ReleaseQuiet"],
                    dead_letter_queue=self.dlq,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(5),
                )
            ],
        )
        # Each quarantine record is kept in a log group; a metric filter counts them.
        self.quarantine_logs = logs.LogGroup(
            self,
            "QuarantineEvents",
            retention=logs.RetentionDays.ONE_YEAR,
            log_group_name=f"/aws/events/{self.settings.stack_name}-quarantine",
            removal_policy=RemovalPolicy.DESTROY,
        )
        # An L1 target plus the log group's resource policy written here: the L2 log-group
        # target would add a custom-resource Lambda just to install that policy.
        self.quarantine_rule = events.CfnRule(
            self,
            "QuarantineRecorded",
            description="amzlake: a raw document was quarantined",
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [self.raw.bucket_name]},
                    "object": {"key": [{"prefix": f"{RAW_PREFIX}/quarantine/"}]},
                },
            },
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="QuarantineLog",
                    # EventBridge takes the log group's ARN without the trailing ":*".
                    arn=self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=self.quarantine_logs.log_group_name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    ),
                )
            ],
        )
        logs.ResourcePolicy(
            self,
            "QuarantineEventsPolicy",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[
                        iam.ServicePrincipal("events.amazonaws.com"),
                        iam.ServicePrincipal("delivery.logs.amazonaws.com"),
                    ],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.quarantine_logs.log_group_arn],
                )
            ],
        )

    # ---- Alarms -----------------------------------------------------------------------------

    def _alarms(self) -> None:
        action = cw_actions.SnsAction(self.topic)
        period = Duration.minutes(5)

        def alarm(name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
            a = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            return a

        self.alarms = {
            "IngestFailed": alarm(
                "IngestExecutionsFailed",
                self.ingest.metric_failed(period=period, statistic="Sum"),
                "An amzlake ingest execution failed.",
            ),
            "TransformFailed": alarm(
                "TransformExecutionsFailed",
                self.transform.metric_failed(period=period, statistic="Sum"),
                "An amzlake transform execution failed.",
            ),
        }
        quarantined = logs.MetricFilter(
            self,
            "QuarantinedDocumentsFilter",
            log_group=self.quarantine_logs,
            # Every event in this group is one quarantine record (the rule matches nothing else).
            filter_pattern=logs.FilterPattern.string_value("$.source", "=", "aws.s3"),
            metric_namespace="amzlake",
            metric_name="QuarantinedDocuments",
            metric_value="1",
            default_value=0,
        )
        self.alarms["Quarantined"] = alarm(
            "DocumentsQuarantined",
            quarantined.metric(period=period, statistic="Sum"),
            "amzlake quarantined a raw document it could not parse (see the quarantine log group).",
        )
        self.alarms["DeadLetters"] = alarm(
            "FailedInvocationsQueued",
            self.dlq.metric_approximate_number_of_messages_visible(
                period=period, statistic="Maximum"
            ),
            "A Lambda, rule or schedule invocation failed for good (see the dead-letter queue).",
        )

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
            ("GlueDatabaseName", GLUE_DATABASE, "Glue database of the curated tables"),
            ("TopicArn", self.topic.topic_arn, "notifications topic"),
            ("KeyArn", self.key.key_arn, "KMS key of every encrypted resource"),
        ):
            CfnOutput(self, name, value=value, description=f"amzlake {what}")
        for app, secret in zip(self.settings.lwa_apps, self.secrets, strict=True):
            CfnOutput(
                self,
                f"Secret{secret.node.id}",
                value=secret.secret_name,
                description=f"Secrets Manager name of LWA app '{app}' (put its values here)",
            )


def _provider_findings(stack: Stack) -> dict[str, str]:
    """What CDK's BucketDeployment and bucket-notification providers are flagged for, and why."""
    artifacts = stack.resolve(
        stack.get_logical_id(stack.node.find_child("Artifacts").node.default_child)
    )  # type: ignore[arg-type]
    provider = "CDK's own provider function (BucketDeployment / S3 bucket notifications)"
    return {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]": f"{provider} logs with the basic execution role; "
        "amzlake's own roles have no managed policy.",
        "AwsSolutions-L1": f"{provider} picks its runtime with the CDK version.",
        **dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON),
        **dict.fromkeys(
            S3_READ_FINDINGS + S3_PUT_FINDINGS + ["AwsSolutions-IAM5[Action::s3:DeleteObject*]"],
            S3_REASON,
        ),
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
        "<AWS::AccountId>-<AWS::Region>/*]": "BucketDeployment reads its source zip from the "
        "CDK bootstrap asset bucket.",
        f"AwsSolutions-IAM5[Resource::<{artifacts}.Arn>/*]": "BucketDeployment syncs the Glue "
        "artifacts (it prunes old files).",
    }


def stack_wide_suppressions(stack: Stack) -> None:
    """Acknowledgements on the constructs CDK adds by itself (providers), each with its reason."""
    findings = _provider_findings(stack)
    for child in stack.node.children:
        if child.node.id.startswith(("Custom::CDKBucketDeployment", "BucketNotificationsHandler")):
            _ack(child, findings)
