"""A synthesized amzlake stack as tests read it, and the config it is synthesized from."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from amzlake.aws.app import build_app

MAX_POLLS = 5
CONFIG = """
[lwa.default]
client_id = "amzn1.application-oa2-client.ads"
client_secret = "secretsmanager:amzlake/lwa/default#client_secret"

[lwa.vendor-app]
client_id = "amzn1.application-oa2-client.vendor"
client_secret = "secretsmanager:amzlake/lwa/vendor-app#client_secret"

[ads]
refresh_token = "secretsmanager:amzlake/lwa/default#ads_refresh_token"
regions = ["NA"]

[vendor]
lwa_app = "vendor-app"
[[vendor.accounts]]
selling_partner_id = "A1VENDOREXAMPLE"
region = "NA"
marketplace_id = "ATVPDKIKX0DER"
refresh_token = "secretsmanager:amzlake/lwa/vendor-app#us_refresh_token"
"""


class Synth:
    """One synthesized stack: the template as data and as an assertions.Template."""

    def __init__(self, template: dict[str, Any], outdir: Path, stack: Any) -> None:
        self.data = template
        self.t = Template.from_json(template)
        self.outdir = outdir
        self.stack = stack
        self.template_path = outdir / f"{stack.artifact_id}.template.json"
        self.metadata_path = outdir / f"{stack.artifact_id}.metadata.json"

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """Logical id -> resource of one CloudFormation type."""
        return {k: r for k, r in self.data["Resources"].items() if r["Type"] == kind}

    def logical(self, construct: Any) -> str:
        """The logical id of an L2 construct's resource (or of an L1 construct)."""
        element = construct.node.default_child or construct
        return str(self.stack.resolve(self.stack.get_logical_id(element)))

    def props(self, construct: Any) -> dict[str, Any]:
        """The Properties of an L2 construct's resource."""
        return self.data["Resources"][self.logical(construct)]["Properties"]

    def definition(self, machine: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A state machine's ASL and its DefinitionSubstitutions."""
        props = self.data["Resources"][self.logical(machine)]["Properties"]
        return json.loads(props["DefinitionString"]), props["DefinitionSubstitutions"]


def synthesize(folder: Path, context: dict[str, str]) -> Synth:
    """The stack synthesized into `folder` with CONFIG and `context`, cdk-nag attached, assets
    not bundled; raises if cdk-nag reports a finding nobody acknowledged."""
    (folder / "amzlake-aws.toml").write_text(CONFIG)
    outdir = folder / "cdk.out"
    app, stack = build_app({"amzlake:config": str(folder / "amzlake-aws.toml"),
                            "amzlake:maxPolls": str(MAX_POLLS), **context},
                           outdir=str(outdir), bundle=False)
    app.synth()
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    return Synth(template, outdir, stack)
