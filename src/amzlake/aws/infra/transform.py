"""Transform: the gate Lambdas (a raw object's arrival, the quiet-period release), the Glue 5.0
job with its role and artifacts, the transform state machine (gate -> Glue -> SNS) and the rules
that start and release it."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import (
    ArnFormat,
    AssetHashType,
    Aws,
    BundlingOptions,
    BundlingOutput,
    DockerImage,
    Duration,
    Size,
    Stack,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from amzlake.aws.bundling import ASSET_EXCLUDES, GLUE_WHEELS_ZIP, UvBundling, source_hash
from amzlake.aws.infra.functions import FunctionSpec, handler_function, invoke_findings
from amzlake.aws.infra.machines import SUMMARY_PREFIX, logged_state_machine, transform_definition
from amzlake.aws.infra.nag import (
    S3_DELETE_FINDINGS,
    S3_PUT_FINDINGS,
    S3_READ_FINDINGS,
    S3_REASON,
    ack,
    kms_grant_findings,
    logical,
)
from amzlake.aws.infra.notifications import Notifications
from amzlake.aws.infra.storage import WAREHOUSE_PREFIX, StorageAndKeys
from amzlake.aws.settings import RAW_PREFIX, StackSettings

GATE_FUNCTIONS: dict[str, FunctionSpec] = {
    "UpdateMetadata": FunctionSpec("update_metadata", 256, 60),
    "ReleaseQuiet": FunctionSpec("release_quiet", 256, 60),
}
# Sources whose documents start a transform (the raw zone's first key level; quarantine is not one).
RAW_SOURCES = ("ads", "vendor")
GLUE_ARTIFACTS_PREFIX = "glue"


class Transform(Construct):
    """The transform gate, the Glue job and the transform state machine, with their triggers."""

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
        glue_config_json: str,
        project_root: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.storage = storage
        self.notifications = notifications
        self.functions = {
            name: handler_function(
                self, name, spec, code=code, environment=environment, dlq=notifications.dlq
            )
            for name, spec in GATE_FUNCTIONS.items()
        }
        self._gate_grants()
        self._glue(glue_config_json, project_root)
        self._state_machine()
        self._triggers()

    def machine_arn(self) -> str:
        """The transform state machine's ARN built from its name (no token: breaks the cycle
        state machine -> function -> role policy -> state machine)."""
        return Stack.of(self).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.settings.transform_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _gate_grants(self) -> None:
        for fn in self.functions.values():
            self.storage.transform_table.grant_read_write_data(fn)
            # Task tokens of the transform state machine only.
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=[
                        "states:SendTaskSuccess",
                        "states:SendTaskFailure",
                        "states:SendTaskHeartbeat",
                    ],
                    resources=[self.machine_arn()],
                )
            )
            ack(fn.role or fn, kms_grant_findings())  # type: ignore[arg-type]

    # ---- Glue -------------------------------------------------------------------------------

    def _glue(self, config_json: str, root: Path) -> None:
        s, st = self.settings, self.storage
        source = s3deploy.Source.asset(
            str(root),
            exclude=ASSET_EXCLUDES,
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=source_hash(root, "glue"),
            bundling=BundlingOptions(
                image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                local=UvBundling(root, "glue"),
                output_type=BundlingOutput.NOT_ARCHIVED,
                command=[
                    "bash",
                    "-c",
                    "echo 'amzlake bundles with uv on this machine' >&2; exit 1",
                ],
            ),
        )
        # Deployed by name (the script, the zip of wheels): Glue is given their S3 paths. The
        # provider unpacks the asset (about 130 MB of wheels) in its /tmp: room for both.
        self.glue_artifacts = s3deploy.BucketDeployment(
            self,
            "GlueArtifacts",
            sources=[source],
            destination_bucket=st.artifacts,
            destination_key_prefix=f"{GLUE_ARTIFACTS_PREFIX}/",
            retain_on_delete=False,
            memory_limit=1024,
            ephemeral_storage_size=Size.gibibytes(2),
        )
        self.glue_role = iam.Role(
            self,
            "GlueRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="amzlake Glue transform job",
        )
        self._glue_grants()
        security = glue.CfnSecurityConfiguration(
            self,
            "GlueSecurity",
            name=s.glue_security_configuration_name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=st.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=st.key.key_arn
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=st.key.key_arn
                    )
                ],
            ),
        )
        artifacts = f"s3://{st.artifacts.bucket_name}/{GLUE_ARTIFACTS_PREFIX}"
        self.glue_job = glue.CfnJob(
            self,
            "TransformJob",
            name=s.glue_job_name,
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
                # Every dependency pinned by uv.lock, as wheels for Glue 5.0 in one zip (Glue 5.0
                # installs a "zip of wheels": AWS Glue developer guide, "Using Python libraries
                # with AWS Glue"); --no-index: pip never reaches PyPI (amzlake.aws.bundling).
                "--additional-python-modules": f"{artifacts}/{GLUE_WHEELS_ZIP}",
                "--python-modules-installer-option": "--no-index",
                "--enable-glue-datacatalog": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--TempDir": f"s3://{st.curated.bucket_name}/glue-temp/",
                "--config_json": config_json,
                "--warehouse": st.warehouse,
                "--database": st.database_name,
            },
            description="amzlake transform: downloaded raw documents into the Iceberg tables",
        )
        self.glue_job.node.add_dependency(security)
        self.glue_job.node.add_dependency(self.glue_artifacts)
        self.glue_job.node.add_dependency(st.glue_database)

    def _glue_grants(self) -> None:
        st, role = self.storage, self.glue_role
        st.raw.grant_read(role)
        st.raw.grant_put(role, f"{RAW_PREFIX}/quarantine/*")  # quarantine records
        st.curated.grant_read_write(role)
        st.curated.grant_delete(role, f"{WAREHOUSE_PREFIX}/*")  # Iceberg expires its old files
        st.artifacts.grant_read(role, f"{GLUE_ARTIFACTS_PREFIX}/*")
        st.ledger.grant_read_write_data(role)
        self.notifications.topic.grant_publish(role)
        st.key.grant_encrypt_decrypt(role)
        db = st.database_name
        catalog = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        # What pyiceberg's Glue catalog calls as the lake writer uses it: the first commit to a
        # new table asks for its namespace (create_namespace = CreateDatabase, answered "already
        # exists" since the stack made it; IAM decides before Glue answers), then CreateTable;
        # every commit GetTable and UpdateTable; the daily maintenance records when it last ran
        # as a property of the database (UpdateDatabase). tests/infra/test_iam_first_run.py
        # checks these against the calls the job makes on moto.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "glue:GetDatabase",
                    "glue:CreateDatabase",
                    "glue:UpdateDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:CreateTable",
                    "glue:UpdateTable",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                ],
                resources=[
                    f"{catalog}:catalog",
                    f"{catalog}:database/{db}",
                    f"{catalog}:table/{db}/*",
                ],
            )
        )
        # When creating the namespace fails otherwise (throttled, a concurrent change), the
        # writer lists the namespaces (GetDatabases) to see whether it is there after all. A list
        # of databases is authorized against the database resource type as a whole (Service
        # Authorization Reference, AWS Glue: GetDatabases requires catalog and database), so the
        # one database's ARN is not enough; it returns database names and metadata, no tables.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetDatabases"],
                resources=[f"{catalog}:catalog", f"{catalog}:database/*"],
            )
        )
        role.add_to_policy(
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
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        findings = kms_grant_findings()
        findings.update(
            dict.fromkeys(S3_READ_FINDINGS + S3_PUT_FINDINGS + S3_DELETE_FINDINGS, S3_REASON)
        )
        for bucket, prefix in (
            (st.raw, "*"),
            (st.raw, f"{RAW_PREFIX}/quarantine/*"),
            (st.curated, "*"),
            (st.curated, f"{WAREHOUSE_PREFIX}/*"),
            (st.artifacts, f"{GLUE_ARTIFACTS_PREFIX}/*"),
        ):
            findings[f"AwsSolutions-IAM5[Resource::<{logical(bucket)}.Arn>/{prefix}]"] = (
                "The job reads every raw document, writes quarantine records, and owns the "
                "Iceberg warehouse (data and metadata files it names itself) in the curated bucket."
            )
        findings[
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:"
            f"<AWS::AccountId>:table/{db}/*]"
        ] = "Tables are created by the transform as report types appear, all in its one database."
        findings[
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:"
            "<AWS::AccountId>:database/*]"
        ] = (
            "glue:GetDatabases only (the lake writer's fallback when creating its namespace "
            "fails): a list call is authorized on every database; it reads no table."
        )
        findings[
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
            "<AWS::AccountId>:log-group:/aws-glue/*]"
        ] = "Glue writes to its own /aws-glue/* log groups (continuous logging)."
        findings["AwsSolutions-IAM5[Resource::*]"] = (
            "cloudwatch:PutMetricData has no resource type; the statement is limited to the "
            "Glue namespace by condition."
        )
        ack(role, findings)

    # ---- State machine ----------------------------------------------------------------------

    def _state_machine(self) -> None:
        st = self.storage
        gate = self.functions["UpdateMetadata"]
        self.state_machine = logged_state_machine(
            self,
            "Transform",
            transform_definition(),
            {
                "UpdateMetadataFunctionArn": gate.function_arn,
                "GlueJobName": self.glue_job.ref,
                "TopicArn": self.notifications.topic.topic_arn,
                "CuratedBucketName": st.curated.bucket_name,
            },
            self.settings.transform_machine_name,
        )
        machine = self.state_machine
        gate.grant_invoke(machine)
        self.notifications.topic.grant_publish(machine)
        st.curated.grant_read(machine, f"{SUMMARY_PREFIX}/*")
        findings = invoke_findings(gate)
        findings.update(kms_grant_findings())
        findings.update(dict.fromkeys(S3_READ_FINDINGS, S3_REASON))
        findings[f"AwsSolutions-IAM5[Resource::<{logical(st.curated)}.Arn>/{SUMMARY_PREFIX}/*]"] = (
            "Each Glue run writes its summary under glue-summaries/<execution name>.json."
        )
        ack(machine, findings)
        job_arn = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}:job/{self.glue_job.ref}"
        machine.add_to_role_policy(
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

    # ---- Rules ------------------------------------------------------------------------------

    def _triggers(self) -> None:
        dlq = self.notifications.dlq
        # A new raw document (not a quarantine record) starts a transform execution.
        self.raw_created = events.Rule(
            self,
            "RawObjectCreated",
            description="amzlake: new raw document -> transform",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.storage.raw.bucket_name]},
                    "object": {"key": [{"prefix": f"{RAW_PREFIX}/{src}/"} for src in RAW_SOURCES]},
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=dlq,
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
                    dead_letter_queue=dlq,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(5),
                )
            ],
        )
