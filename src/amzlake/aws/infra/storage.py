"""Storage and keys: the customer-managed KMS key, the buckets, the DynamoDB tables, the LWA
secrets and the Glue database of the curated tables.

One key encrypts everything that takes one: the raw, curated and artifacts buckets, the tables,
the secrets, and (granted here to the services that need it) the topic, the dead-letter queue and
Glue's logs and bookmarks. Data is kept when the stack is deleted (RETAIN), except what rebuilds
itself (the rate budget).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from amzlake.aws.infra.nag import ack
from amzlake.aws.settings import RAW_PREFIX, StackSettings

WAREHOUSE_PREFIX = "warehouse"


class StorageAndKeys(Construct):
    """The key, buckets, tables, secrets and Glue database; nothing here runs code."""

    def __init__(self, scope: Construct, construct_id: str, settings: StackSettings) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self._key()
        self._buckets()
        self._tables()
        self._secrets()
        self._database()

    # ---- KMS --------------------------------------------------------------------------------

    def _key(self) -> None:
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description=f"amzlake {self.settings.env}: raw, curated, ledger, secrets, topic, queues",
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The key is kept when the stack goes, its alias is not: a redeploy names it again.
        kms.Alias(
            self,
            "KeyAlias",
            alias_name=self.settings.key_alias,
            target_key=self.key,
            removal_policy=RemovalPolicy.DESTROY,
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

    # ---- S3 ---------------------------------------------------------------------------------

    def bucket(self, name: str, **extra: Any) -> s3.Bucket:
        """A private, versioned bucket encrypted with the key, logging to the access-log bucket."""
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
        ack(
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
        self.raw = self.bucket(
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
        self.curated = self.bucket(
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
        self.artifacts = self.bucket(
            "Artifacts",
            lifecycle_rules=[
                abort_uploads,
                s3.LifecycleRule(
                    id="old-versions", noncurrent_version_expiration=Duration.days(30)
                ),
            ],
        )
        self.raw_url = f"s3://{self.raw.bucket_name}/{RAW_PREFIX}"
        self.warehouse = f"s3://{self.curated.bucket_name}/{WAREHOUSE_PREFIX}"

    # ---- DynamoDB ---------------------------------------------------------------------------

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
        ack(
            self.rate_table,
            {
                "AwsSolutions-DDB3": "Token buckets that refill by themselves: nothing to "
                "recover to a point in time."
            },
        )

    # ---- Secrets Manager --------------------------------------------------------------------

    def _secrets(self) -> None:
        self.secrets: list[secretsmanager.Secret] = []
        for app in self.settings.lwa_apps:
            # No value in the template: Secrets Manager generates a throwaway one that the user
            # replaces (put-secret-value) with {"client_secret": ..., "<token key>": ...}.
            # No name either: a kept secret (RETAIN: the credentials outlive a `cdk destroy`)
            # would block a redeploy under a fixed name, and CloudFormation cannot adopt it
            # (its primary identifier, the ARN, is read-only, so automatic import is refused).
            # CloudFormation names each new one itself; the stack ships its ARN to the code.
            secret = secretsmanager.Secret(
                self,
                f"LwaSecret{''.join(p.capitalize() for p in app.replace('-', '_').split('_'))}",
                encryption_key=self.key,
                description=f"amzlake LWA app '{app}': JSON with client_secret and refresh tokens",
                removal_policy=RemovalPolicy.RETAIN,
            )
            ack(
                secret,
                {
                    "AwsSolutions-SMG4": "LWA client secrets and refresh tokens are "
                    "issued by Amazon's developer console; no Lambda can rotate them."
                },
            )
            self.secrets.append(secret)
        self.secret_arns = {
            self.settings.secret_reference(app): secret.secret_arn
            for app, secret in zip(self.settings.lwa_apps, self.secrets, strict=True)
        }

    # ---- Glue Data Catalog ------------------------------------------------------------------

    def _catalog_encryption(self) -> None:
        """The account's Data Catalog in this region encrypted with the key (opt-in).

        One setting per account and region (its identifier is the account id): every database
        in it, not only this stack's, is then encrypted with this key, and every principal that
        reads or writes the catalog needs kms:Decrypt / kms:GenerateDataKey on it (Glue calls KMS
        as the caller: "Encrypting your Data Catalog", AWS Glue developer guide). Connection
        password encryption is left off: amzlake has no Glue connection.
        """
        self.catalog_encryption = glue.CfnDataCatalogEncryptionSettings(
            self,
            "DataCatalogEncryption",
            catalog_id=Aws.ACCOUNT_ID,
            data_catalog_encryption_settings=glue.CfnDataCatalogEncryptionSettings.DataCatalogEncryptionSettingsProperty(
                encryption_at_rest=glue.CfnDataCatalogEncryptionSettings.EncryptionAtRestProperty(
                    catalog_encryption_mode="SSE-KMS", sse_aws_kms_key_id=self.key.key_arn
                ),
                connection_password_encryption=glue.CfnDataCatalogEncryptionSettings.ConnectionPasswordEncryptionProperty(
                    return_connection_password_encrypted=False
                ),
            ),
        )
        # The database is written encrypted once the setting is in place.
        self.glue_database.add_dependency(self.catalog_encryption)

    def _database(self) -> None:
        self.database_name = self.settings.glue_database
        self.glue_database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="amzlake curated Iceberg tables",
                location_uri=f"{self.warehouse}/{self.database_name}.db",
            ),
        )
        self.catalog_encryption: glue.CfnDataCatalogEncryptionSettings | None = None
        if self.settings.encrypt_data_catalog:
            self._catalog_encryption()
