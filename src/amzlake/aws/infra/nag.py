"""cdk-nag acknowledgements the constructs share: what CDK's own grants are flagged for, and why."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import Construct

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
S3_DELETE_FINDINGS = ["AwsSolutions-IAM5[Action::s3:DeleteObject*]"]
S3_REASON = (
    "CDK's bucket grants use action wildcards (GetObject*, List*, Abort*: multipart "
    "uploads); the resources are this stack's buckets and prefixes only."
)


def ack(construct: Construct, reasons: dict[str, str]) -> None:
    """Acknowledge cdk-nag findings on `construct` and below, each with why it does not apply."""
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=finding, reason=why) for finding, why in reasons.items())
    )


def logical(construct: Construct) -> str:
    """The CloudFormation logical id of an L2 construct's resource (as cdk-nag names it)."""
    stack = Stack.of(construct)
    child = construct.node.default_child
    return str(stack.resolve(stack.get_logical_id(child)))  # type: ignore[arg-type]


def kms_grant_findings() -> dict[str, str]:
    """The acknowledgements every role that uses the stack's key through CDK grants needs."""
    return dict.fromkeys(KMS_GRANT_FINDINGS, KMS_REASON)
