"""Helpers for ingestion tests: a config pointing at a running emulator, and running it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from amzlake.config import AmzlakeConfig
from amzlake.emulator.client_config import emulator_config as config_for_emulator
from amzlake.ingest.pipeline import Ingestion
from amzlake.ingest.runner import RunResult
from amzlake.secrets import CredentialChain
from tests.conftest import RunningEmulator


def emulator_config(emu: RunningEmulator, folder: Path,
                    **sections: Any) -> tuple[AmzlakeConfig, dict[str, str]]:
    """A config for `emu` (its credentials as env references) and the environment holding them."""
    # At the tests' 600x clock Amazon's 3-hour wait is 18 real seconds, which a loaded machine
    # can exceed; two days of virtual time keep the waits a report's own, not the machine's.
    run = {"poll_initial": "10s", "poll_max": "2m", "max_wait": {"default": "48h"},
           **sections.pop("run", {})}
    return config_for_emulator(emu.base_url, emu.credentials, folder, origin="test config",
                               run=run, **sections)


def run_once(emu: RunningEmulator, config: AmzlakeConfig, env: dict[str, str],
             **kwargs: Any) -> tuple[RunResult, Ingestion, list]:
    """One `amzlake run` in-process on the emulator's clock; returns the result and the ledger."""

    async def go() -> tuple[RunResult, Ingestion, list]:
        ingestion = Ingestion.open(config, emu.state.clock, CredentialChain.default(environ=env))
        try:
            result, planned = await ingestion.run(**kwargs)
        finally:
            await ingestion.pool.aclose()
        return result, ingestion, planned

    return asyncio.run(go())


def write_config_files(emu: RunningEmulator, folder: Path) -> Path:
    """amzlake.toml and an owner-only secrets.toml in `folder` for `emu`; returns the config."""
    creds = emu.credentials
    secrets = folder / "secrets.toml"
    secrets.write_text(
        f'lwa = "{creds["lwa"]["client_secret"]}"\nads = "{creds["ads"]["refresh_token"]}"\n'
        + "".join(f'vendor{i} = "{v["refresh_token"]}"\n' for i, v in enumerate(creds["vendor"])))
    secrets.chmod(0o600)
    accounts = "".join(
        f'[[vendor.accounts]]\nselling_partner_id = "{v["selling_partner_id"]}"\n'
        f'region = "{v["region"]}"\nmarketplace_id = "{v["marketplace_id"]}"\n'
        f'refresh_token = "file:secrets.toml#vendor{i}"\n'
        for i, v in enumerate(creds["vendor"]))
    config = folder / "amzlake.toml"
    config.write_text(f"""
[lwa.default]
client_id = "{creds["lwa"]["client_id"]}"
client_secret = "file:secrets.toml#lwa"

[ads]
refresh_token = "file:secrets.toml#ads"
[[ads.reports]]
report_type = "spCampaigns"
[[ads.reports]]
report_type = "spAdvertisedProduct"

[vendor]
enabled = true
[[vendor.reports]]
report_type = "GET_VENDOR_SALES_REPORT"
[[vendor.reports]]
report_type = "GET_VENDOR_TRAFFIC_REPORT"
{accounts}
[run]
poll_initial = "20s"
max_wait = {{ default = "24h" }}

[endpoints]
base_url = "{emu.base_url}"
""")
    return config
