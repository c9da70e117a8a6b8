"""Daily: the age in days of each LWA app's client secret, as a CloudWatch metric.

SP-API requires a new LWA client secret every 180 days. The age counts from the secret's tag
`amzlake:client-secret-rotated` (YYYY-MM-DD, set when the client secret is rotated), else from
the secret's last change. Shipped inline with the stack (stdlib and boto3 only, under 4 KB).
Environment: SECRETS (JSON {app: secret ARN}), NAMESPACE (the metric namespace).
"""

import json
import os
from datetime import UTC, datetime

import boto3

TAG = "amzlake:client-secret-rotated"


def age_days(described, now):
    """Whole days since the client secret was last rotated, from a DescribeSecret answer."""
    tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
    if tags.get(TAG):
        since = datetime.fromisoformat(tags[TAG]).replace(tzinfo=UTC)
    else:
        since = described.get("LastChangedDate") or described["CreatedDate"]
    return max(0, (now - since).days)


def handler(event, context):
    """{app: age in days}, each also put as the metric LwaClientSecretAgeDays (dimension App)."""
    secrets = json.loads(os.environ["SECRETS"])
    sm, cw = boto3.client("secretsmanager"), boto3.client("cloudwatch")
    now = datetime.now(UTC)
    ages = {app: age_days(sm.describe_secret(SecretId=arn), now) for app, arn in secrets.items()}
    cw.put_metric_data(Namespace=os.environ["NAMESPACE"], MetricData=[
        {"MetricName": "LwaClientSecretAgeDays", "Dimensions": [{"Name": "App", "Value": app}],
         "Value": days, "Unit": "Count"} for app, days in ages.items()])
    return ages
