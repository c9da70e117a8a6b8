"""The stack synthesized once per session (a synth takes about ten seconds): environment `a`
with the defaults, and environment `b` with every opt-in flag on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("aws_cdk", reason="the infra extra (aws-cdk-lib) is not installed")

from tests.infra.synth import Synth, synthesize

# Environment b turns every opt-in on, so that one more synth also checks the flags.
OPT_IN = {"amzlake:encryptDataCatalog": "true", "amzlake:lakeFormationGrants": "true"}


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """Environment `a`, defaults."""
    yield synthesize(tmp_path_factory.mktemp("stack-a"), {"amzlake:env": "a"})


@pytest.fixture(scope="session")
def synth_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """Environment `b`, every opt-in flag on."""
    yield synthesize(tmp_path_factory.mktemp("stack-b"), {"amzlake:env": "b", **OPT_IN})
