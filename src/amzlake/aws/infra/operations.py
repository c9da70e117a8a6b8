"""Operations: what a team watches. The quarantine record log (one event per quarantined
document), and alarms on failed executions, quarantined documents and dead-lettered invocations,
each notifying the topic."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from amzlake.aws.infra.notifications import Notifications
from amzlake.aws.infra.storage import StorageAndKeys
from amzlake.aws.settings import RAW_PREFIX, StackSettings

PERIOD = Duration.minutes(5)


class Operations(Construct):
    """Quarantine log and metric, alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        storage: StorageAndKeys,
        notifications: Notifications,
        ingest: sfn.StateMachine,
        transform: sfn.StateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.action = cw_actions.SnsAction(notifications.topic)
        self._quarantine_log(storage)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarms(notifications, ingest, transform)

    def alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        """An alarm that notifies the topic once `metric` reaches 1 in a period."""
        a = cloudwatch.Alarm(
            self,
            name,
            alarm_name=self.settings.alarm_name(name),
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        a.add_alarm_action(self.action)
        return a

    def _quarantine_log(self, storage: StorageAndKeys) -> None:
        # Each quarantine record is kept in a log group; a metric filter counts them.
        self.quarantine_logs = logs.LogGroup(
            self,
            "QuarantineEvents",
            retention=logs.RetentionDays.ONE_YEAR,
            log_group_name=self.settings.quarantine_log_group,
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
                    "bucket": {"name": [storage.raw.bucket_name]},
                    "object": {"key": [{"prefix": f"{RAW_PREFIX}/quarantine/"}]},
                },
            },
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="QuarantineLog",
                    # EventBridge takes the log group's ARN without the trailing ":*".
                    arn=Stack.of(self).format_arn(
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
        self.quarantined = logs.MetricFilter(
            self,
            "QuarantinedDocumentsFilter",
            log_group=self.quarantine_logs,
            # Every event in this group is one quarantine record (the rule matches nothing else).
            filter_pattern=logs.FilterPattern.string_value("$.source", "=", "aws.s3"),
            metric_namespace=self.settings.metric_namespace,
            metric_name="QuarantinedDocuments",
            metric_value="1",
            default_value=0,
        )

    def _alarms(
        self, notifications: Notifications, ingest: sfn.StateMachine, transform: sfn.StateMachine
    ) -> None:
        self.alarms["IngestFailed"] = self.alarm(
            "IngestExecutionsFailed",
            ingest.metric_failed(period=PERIOD, statistic="Sum"),
            "An amzlake ingest execution failed.",
        )
        self.alarms["TransformFailed"] = self.alarm(
            "TransformExecutionsFailed",
            transform.metric_failed(period=PERIOD, statistic="Sum"),
            "An amzlake transform execution failed.",
        )
        self.alarms["Quarantined"] = self.alarm(
            "DocumentsQuarantined",
            self.quarantined.metric(period=PERIOD, statistic="Sum"),
            "amzlake quarantined a raw document it could not parse (see the quarantine log group).",
        )
        self.alarms["DeadLetters"] = self.alarm(
            "FailedInvocationsQueued",
            notifications.dlq.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"
            ),
            "A Lambda, rule or schedule invocation failed for good (see the dead-letter queue).",
        )
