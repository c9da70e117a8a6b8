"""Operations: what a team watches, each alarm notifying the topic, and one dashboard.

Alarms: failed and timed-out executions of both state machines; quarantined documents (a log of
quarantine records and a metric filter); dead-lettered invocations; sustained throttling; Glue job
runs that failed, timed out or errored; an LWA client secret nearing SP-API's 180-day rotation.

Throttling is counted from the handlers' ThrottledError as the Lambda Python runtime logs an
uncaught error ("[ERROR] ThrottledError: ..."), by metric filters on the log groups of the steps
that call Amazon: every time a step hands a throttled call to the state machine's Retry, whether
Amazon answered 429 past the client's own retries or the shared rate budget had no token soon
enough. No handler change is needed for it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from amzlake.aws.infra.functions import LOG_RETENTION
from amzlake.aws.infra.ingest import CALLS_AMAZON, Ingest
from amzlake.aws.infra.nag import ack
from amzlake.aws.infra.notifications import Notifications
from amzlake.aws.infra.storage import StorageAndKeys
from amzlake.aws.infra.transform import Transform
from amzlake.aws.settings import RAW_PREFIX, StackSettings

PERIOD = Duration.minutes(5)
# Sustained throttling: this many throttled steps in each of THROTTLE_PERIODS periods in a row.
THROTTLE_PER_PERIOD = 5
THROTTLE_PERIODS = 3
# SP-API: "You must rotate your LWA credentials (client secrets) for all applications every 180
# days" (Selling Partner API docs, "Rotate your Application's LWA Credentials"); the alarm leaves
# a month to do it.
SECRET_MAX_DAYS = 180
SECRET_ALARM_DAYS = 150
GLUE_FAILED_STATES = ["FAILED", "TIMEOUT", "ERROR"]


class Operations(Construct):
    """Quarantine log and metric, throttling metric, Glue failure rule, secret age, alarms,
    dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        storage: StorageAndKeys,
        notifications: Notifications,
        ingest: Ingest,
        transform: Transform,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.action = cw_actions.SnsAction(notifications.topic)
        self._quarantine_log(storage)
        self._throttling(ingest)
        self._glue_failures(transform, notifications)
        self._secret_age(storage)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarms(notifications, ingest, transform)
        self._dashboard(ingest, transform, notifications)

    def alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        threshold: float = 1,
        periods: int = 1,
    ) -> cloudwatch.Alarm:
        """An alarm that notifies the topic once `metric` reaches `threshold` in `periods`
        periods in a row."""
        a = cloudwatch.Alarm(
            self,
            name,
            alarm_name=self.settings.alarm_name(name),
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
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

    def _throttling(self, ingest: Ingest) -> None:
        self.throttled = cloudwatch.Metric(
            namespace=self.settings.metric_namespace,
            metric_name="ThrottledSteps",
            period=PERIOD,
            statistic="Sum",
        )
        for name in CALLS_AMAZON:
            logs.MetricFilter(
                self,
                f"{name}Throttled",
                log_group=ingest.functions[name].log_group,
                filter_pattern=logs.FilterPattern.all_terms("[ERROR]", "ThrottledError"),
                metric_namespace=self.settings.metric_namespace,
                metric_name="ThrottledSteps",
                metric_value="1",
                default_value=0,
            )

    def _glue_failures(self, transform: Transform, notifications: Notifications) -> None:
        # Glue sends a "Glue Job State Change" event for every run that ends (AWS Glue developer
        # guide, "Automating AWS Glue with EventBridge"); the failed ones go to the topic as they
        # are, and the rule's TriggeredRules metric feeds the alarm.
        self.glue_failed_rule = events.Rule(
            self,
            "GlueJobFailed",
            description="amzlake: a Glue transform run failed, timed out or errored",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [self.settings.glue_job_name], "state": GLUE_FAILED_STATES},
            ),
            targets=[targets.SnsTopic(notifications.topic)],
        )

    def _secret_age(self, storage: StorageAndKeys) -> None:
        code = (Path(__file__).parent / "secret_age.py").read_text()
        log_group = logs.LogGroup(
            self, "SecretAgeLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        apps = dict(zip(self.settings.lwa_apps, storage.secrets, strict=True))
        self.secret_age = lambda_.Function(
            self,
            "SecretAge",
            runtime=lambda_.Runtime.PYTHON_3_12,
            code=lambda_.Code.from_inline(code),
            handler="index.handler",
            timeout=Duration.seconds(60),
            memory_size=128,
            log_group=log_group,
            environment={
                "SECRETS": Stack.of(self).to_json_string(
                    {app: secret.secret_arn for app, secret in apps.items()}
                ),
                "NAMESPACE": self.settings.metric_namespace,
            },
            description="amzlake: age of each LWA client secret (SP-API: rotate every 180 days)",
        )
        for secret in apps.values():
            self.secret_age.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:DescribeSecret"], resources=[secret.secret_arn]
                )
            )
        self.secret_age.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": self.settings.metric_namespace}},
            )
        )
        events.Rule(
            self,
            "SecretAgeDaily",
            schedule=events.Schedule.rate(Duration.days(1)),
            description="amzlake: measure the LWA client secrets' age",
            targets=[targets.LambdaFunction(self.secret_age, retry_attempts=2)],
        )
        ack(
            self.secret_age,
            {
                "AwsSolutions-L1": "Python 3.12, as the handlers; the function uses the "
                "standard library and boto3 only.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]": "CDK's default Lambda role for a small monitor "
                "that only describes the stack's secrets and puts one metric.",
                "AwsSolutions-IAM5[Resource::*]": "cloudwatch:PutMetricData has no resource "
                "type; the statement is limited to the environment's namespace by condition.",
            },
        )
        self.secret_age_metrics = {
            app: cloudwatch.Metric(
                namespace=self.settings.metric_namespace,
                metric_name="LwaClientSecretAgeDays",
                dimensions_map={"App": app},
                period=Duration.days(1),
                statistic="Maximum",
            )
            for app in apps
        }

    def _alarms(self, notifications: Notifications, ingest: Ingest, transform: Transform) -> None:
        machines = {"Ingest": ingest.state_machine, "Transform": transform.state_machine}
        for name, machine in machines.items():
            self.alarms[f"{name}Failed"] = self.alarm(
                f"{name}ExecutionsFailed",
                machine.metric_failed(period=PERIOD, statistic="Sum"),
                f"An amzlake {name.lower()} execution failed.",
            )
        for name, machine in machines.items():
            self.alarms[f"{name}TimedOut"] = self.alarm(
                f"{name}ExecutionsTimedOut",
                machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                f"An amzlake {name.lower()} execution timed out.",
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
        self.alarms["Throttled"] = self.alarm(
            "SustainedThrottling",
            self.throttled,
            f"amzlake steps were throttled at least {THROTTLE_PER_PERIOD} times in each of "
            f"{THROTTLE_PERIODS} five-minute periods: Amazon keeps refusing calls (see the step "
            "logs); the runs go on, slower.",
            threshold=THROTTLE_PER_PERIOD,
            periods=THROTTLE_PERIODS,
        )
        self.alarms["GlueFailed"] = self.alarm(
            "GlueJobRunsFailed",
            cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="TriggeredRules",
                dimensions_map={"RuleName": self.glue_failed_rule.rule_name},
                period=PERIOD,
                statistic="Sum",
            ),
            "A Glue transform run failed, timed out or errored (its event went to the topic).",
        )
        for app, metric in self.secret_age_metrics.items():
            self.alarms[f"SecretAge:{app}"] = self.alarm(
                f"LwaSecretAge{''.join(p.capitalize() for p in app.replace('-', '_').split('_'))}",
                metric,
                f"The LWA client secret of app '{app}' is {SECRET_ALARM_DAYS} days old or more: "
                f"SP-API refuses it after {SECRET_MAX_DAYS} days. Rotate it (README: 'Rotating "
                "the LWA client secret') and tag the secret amzlake:client-secret-rotated.",
                threshold=SECRET_ALARM_DAYS,
            )

    def _dashboard(self, ingest: Ingest, transform: Transform, notifications: Notifications) -> None:
        machines = {"ingest": ingest.state_machine, "transform": transform.state_machine}

        def graph(title: str, metrics: list[cloudwatch.IMetric], width: int = 8) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6)

        executions = [
            graph(
                f"{name} executions",
                [
                    m.metric_started(period=PERIOD, statistic="Sum"),
                    m.metric_succeeded(period=PERIOD, statistic="Sum"),
                    m.metric_failed(period=PERIOD, statistic="Sum"),
                    m.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
            )
            for name, m in machines.items()
        ]
        functions = {**ingest.functions, **transform.functions}
        lambdas = [
            graph("Lambda errors", [f.metric_errors(period=PERIOD, statistic="Sum",
                                                    label=n) for n, f in functions.items()]),
            graph("Lambda duration (p95)", [f.metric_duration(period=PERIOD, statistic="p95",
                                                              label=n) for n, f in functions.items()]),
            graph("Lambda throttles", [f.metric_throttles(period=PERIOD, statistic="Sum",
                                                          label=n) for n, f in functions.items()]),
        ]
        health = [
            graph("Throttled steps", [self.throttled]),
            graph("Quarantined documents", [self.quarantined.metric(period=PERIOD, statistic="Sum")]),
            graph("Dead letters", [notifications.dlq.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum")]),
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.settings.prefix,
            widgets=[
                [cloudwatch.AlarmStatusWidget(
                    title="amzlake alarms", alarms=list(self.alarms.values()), width=24, height=4)],
                [*executions, graph("Glue runs failed", [self.alarms["GlueFailed"].metric])],
                lambdas,
                health,
                [graph("LWA client secret age (days)", list(self.secret_age_metrics.values()),
                       width=24)],
            ],
        )
