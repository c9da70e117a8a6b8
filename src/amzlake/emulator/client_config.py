"""An amzlake configuration for a running emulator: what benchmarks and tests ingest with.

The emulator's credentials (GET /_emulator/credentials) become env references, so the config
itself holds no secret; the environment that resolves them comes back beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amzlake.config import AmzlakeConfig, parse_config


def emulator_config(base_url: str, creds: dict[str, Any], folder: Path, *,
                    origin: str = "emulator config",
                    **sections: dict[str, Any]) -> tuple[AmzlakeConfig, dict[str, str]]:
    """A config for the emulator at `base_url` (Ads and every vendor account of `creds`, lake
    under `folder`) and the environment holding its secrets; `sections` are merged over the
    defaults section by section."""
    env = {"LWA_SECRET": creds["lwa"]["client_secret"], "ADS_TOKEN": creds["ads"]["refresh_token"]}
    vendors = []
    for i, v in enumerate(creds["vendor"]):
        env[f"VENDOR_{i}"] = v["refresh_token"]
        vendors.append({"selling_partner_id": v["selling_partner_id"], "region": v["region"],
                        "marketplace_id": v["marketplace_id"], "refresh_token": f"env:VENDOR_{i}"})
    data: dict[str, Any] = {
        "lwa": {"default": {"client_id": creds["lwa"]["client_id"],
                            "client_secret": "env:LWA_SECRET"}},
        "ads": {"enabled": True, "refresh_token": "env:ADS_TOKEN"},
        "vendor": {"enabled": True, "accounts": vendors},
        "storage": {"lake": str(folder / "lake")},
        "endpoints": {"base_url": base_url},
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return parse_config(data, base_dir=folder, environ={}, origin=origin), env
