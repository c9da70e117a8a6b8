"""Query access: an Athena workgroup (engine v3) whose results land encrypted with the stack's
key in a bucket of their own, and a reader role that may query the curated tables through it.

With the lakeFormationGrants flag (accounts whose Data Catalog Lake Formation governs), the
reader role is also granted Lake Formation DESCRIBE on the database and SELECT on its tables;
the flag is off by default, since in an account where Lake Formation defers to IAM (its default
"IAMAllowedPrincipals" settings) such grants change nothing and need a data lake administrator
to create.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lakeformation as lakeformation
from aws_cdk import aws_s3 as s3
from constructs import Construct

from amzlake.aws.infra.nag import (
    S3_PUT_FINDINGS,
    S3_READ_FINDINGS,
    S3_REASON,
    ack,
    kms_grant_findings,
    logical,
)
from amzlake.aws.infra.storage import WAREHOUSE_PREFIX, StorageAndKeys
from amzlake.aws.settings import StackSettings

RESULTS_PREFIX = "results"


class QueryAccess(Construct):
    """The Athena workgroup, its encrypted results bucket and the reader role."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: StackSettings,
        storage: StorageAndKeys,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.results = storage.bucket(
            "AthenaResults",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-results", expiration=Duration.days(30),
                                 noncurrent_version_expiration=Duration.days(1)),
            ],
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=settings.prefix,
            description=f"amzlake {settings.env}: queries over the curated Iceberg tables",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results.bucket_name}/{RESULTS_PREFIX}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=storage.key.key_arn
                    ),
                ),
            ),
        )
        self._reader(storage)

    def _reader(self, storage: StorageAndKeys) -> None:
        stack = Stack.of(self)
        self.reader = iam.Role(
            self,
            "ReaderRole",
            assumed_by=iam.AccountPrincipal(Aws.ACCOUNT_ID),
            description=f"amzlake {self.settings.env}: query the curated tables in Athena",
        )
        workgroup_arn = stack.format_arn(
            service="athena", resource="workgroup", resource_name=self.settings.prefix
        )
        self.reader.add_to_policy(iam.PolicyStatement(
            actions=["athena:StartQueryExecution", "athena:GetQueryExecution",
                     "athena:GetQueryResults", "athena:StopQueryExecution",
                     "athena:GetWorkGroup", "athena:ListQueryExecutions"],
            resources=[workgroup_arn],
        ))
        db = storage.database_name
        catalog = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        self.reader.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables",
                     "glue:GetPartitions", "glue:BatchGetPartition"],
            resources=[f"{catalog}:catalog", f"{catalog}:database/{db}",
                       f"{catalog}:table/{db}/*"],
        ))
        storage.curated.grant_read(self.reader, f"{WAREHOUSE_PREFIX}/*")
        self.results.grant_read_write(self.reader, f"{RESULTS_PREFIX}/*")
        storage.key.grant_encrypt_decrypt(self.reader)
        findings = kms_grant_findings()
        findings.update(dict.fromkeys(S3_READ_FINDINGS + S3_PUT_FINDINGS
                                      + ["AwsSolutions-IAM5[Action::s3:DeleteObject*]"],
                                      S3_REASON))
        findings[f"AwsSolutions-IAM5[Resource::<{logical(storage.curated)}.Arn>/"
                 f"{WAREHOUSE_PREFIX}/*]"] = (
            "The reader reads the Iceberg warehouse: data and metadata files the job names.")
        findings[f"AwsSolutions-IAM5[Resource::<{logical(self.results)}.Arn>/"
                 f"{RESULTS_PREFIX}/*]"] = "Athena writes each query's results under results/."
        findings[f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:"
                 f"<AWS::AccountId>:table/{db}/*]"] = (
            "Every curated table of the environment's one database is for reading.")
        if self.settings.lake_formation_grants:
            self._lake_formation(db)
            findings["AwsSolutions-IAM5[Resource::*]"] = (
                "lakeformation:GetDataAccess has no resource type (Lake Formation vends "
                "credentials for the tables its grants allow).")
        ack(self.reader, findings)

    def _lake_formation(self, db: str) -> None:
        self.reader.add_to_policy(iam.PolicyStatement(
            actions=["lakeformation:GetDataAccess"], resources=["*"]))
        principal = lakeformation.CfnPrincipalPermissions.DataLakePrincipalProperty(
            data_lake_principal_identifier=self.reader.role_arn)
        lakeformation.CfnPrincipalPermissions(
            self,
            "ReaderDatabase",
            principal=principal,
            resource=lakeformation.CfnPrincipalPermissions.ResourceProperty(
                database=lakeformation.CfnPrincipalPermissions.DatabaseResourceProperty(
                    catalog_id=Aws.ACCOUNT_ID, name=db)),
            permissions=["DESCRIBE"],
            permissions_with_grant_option=[],
        )
        lakeformation.CfnPrincipalPermissions(
            self,
            "ReaderTables",
            principal=principal,
            resource=lakeformation.CfnPrincipalPermissions.ResourceProperty(
                table=lakeformation.CfnPrincipalPermissions.TableResourceProperty(
                    catalog_id=Aws.ACCOUNT_ID, database_name=db,
                    table_wildcard={})),
            permissions=["SELECT", "DESCRIBE"],
            permissions_with_grant_option=[],
        )
