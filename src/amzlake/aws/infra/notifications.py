"""Notifications: the SNS topic (runs, alarms) with its optional e-mail subscription, and the
dead-letter queue of every Lambda, rule and schedule invocation that failed for good."""

from __future__ import annotations

from aws_cdk import CfnCondition, Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from amzlake.aws.infra.nag import ack


class Notifications(Construct):
    """The topic everything reports to, and the dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        email: str,
        has_email: CfnCondition,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Notifications",
            master_key=key,
            enforce_ssl=True,
            display_name="amzlake notifications",
        )
        sub = sns.CfnSubscription(
            self,
            "NotificationEmailSubscription",
            protocol="email",
            topic_arn=self.topic.topic_arn,
            endpoint=email,
        )
        sub.cfn_options.condition = has_email
        self.dlq = sqs.Queue(
            self,
            "FailedInvocations",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        ack(
            self.dlq,
            {
                "AwsSolutions-SQS3": "This queue is the dead-letter destination of "
                "the Lambdas, rules and schedule; it needs no DLQ of its own."
            },
        )
