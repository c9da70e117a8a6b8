"""The CDK app: `cdk synth` / `cdk deploy` run this (cdk.json), `amzlake aws synth` calls build_app.

cdk-nag's AwsSolutions pack checks every synth; a finding without a reasoned suppression is an
error annotation, which makes `cdk deploy` stop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# jsii's Node version banner is noise on every synth (the CDK still runs; Node 20 is installed).
# jsii reads a comma-separated list of Node major versions whose end-of-life banner it skips.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from aws_cdk import App, Environment, Validations  # after the env above
from cdk_nag import AwsSolutionsChecks

from amzlake.aws.bundling import project_root
from amzlake.aws.settings import settings_from_context
from amzlake.aws.stack import AmzlakeStack, stack_wide_suppressions

# CDK feature flags this stack relies on (also in cdk.json, which `cdk` reads).
FEATURE_FLAGS = {
    # Server access logs delivered under a bucket policy, not the legacy LogDeliveryWrite ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None, bundle: bool = True
) -> tuple[App, AmzlakeStack]:
    """The CDK app with the amzlake stack, cdk-nag attached; bundle=False skips building assets."""
    ctx: dict[str, Any] = {**FEATURE_FLAGS, **(context or {})}
    if not bundle:
        ctx["aws:cdk:bundling-stacks"] = []  # CDK's own switch: stage sources, run no bundling
    app = App(context=ctx, outdir=outdir)
    merged = {k: app.node.try_get_context(k) for k in _context_keys(app, ctx)}
    root = project_root()
    # A relative config path is read from where cdk / amzlake was started.
    settings = settings_from_context(merged, Path.cwd())
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = Environment(
            account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION")
        )
    stack = AmzlakeStack(
        app,
        settings.stack_name,
        settings,
        project_root=root,
        env=env,
        description="amzlake: Amazon Ads and Vendor Central reports into an "
        "Iceberg lakehouse (issue 5 AWS runtime)",
    )
    stack_wide_suppressions(stack)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def _context_keys(app: App, given: Mapping[str, Any]) -> list[str]:
    """The amzlake:* context keys set on the app (given here, in cdk.json or on the CLI)."""
    from amzlake.aws.settings import CONTEXT_PREFIX

    names = (
        "config",
        "env",
        "stackName",
        "secretPrefix",
        "maxConcurrency",
        "maxPolls",
        "glueWorkers",
        "rawInfrequentAccessDays",
        "encryptDataCatalog",
        "lakeFormationGrants",
    )
    return [CONTEXT_PREFIX + n for n in names] + [k for k in given if k.startswith(CONTEXT_PREFIX)]


def main() -> None:
    """Entry point of `python -m amzlake.aws.app` (what cdk.json runs)."""
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
