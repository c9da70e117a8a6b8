"""Shared fixtures: a real emulator server on 127.0.0.1 with a free port, stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from amzlake.emulator.faults import Scenario, scenario_from_dict
from amzlake.emulator.state import EmulatorState

if TYPE_CHECKING:
    from amzlake.emulator.server import EmulatorServer

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
# A fixed virtual "now" keeps dates, restatement and retention checks reproducible.
FIXED_NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@dataclass
class RunningEmulator:
    """A started emulator as tests see it."""

    base_url: str
    state: EmulatorState
    credentials: dict[str, Any]
    client: httpx.Client

    def access_token(self, refresh_token: str | None = None) -> str:
        """An LWA access token for `refresh_token` (default: the Ads login)."""
        lwa = self.credentials["lwa"]
        r = self.client.post("/auth/o2/token", data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token or self.credentials["ads"]["refresh_token"],
            "client_id": lwa["client_id"],
            "client_secret": lwa["client_secret"],
        })
        r.raise_for_status()
        return r.json()["access_token"]

    def ads_headers(self, profile_id: int | None = None) -> dict[str, str]:
        """Headers an Ads client sends (scope = `profile_id` when given)."""
        headers = {
            "Authorization": f"Bearer {self.access_token()}",
            "Amazon-Advertising-API-ClientId": self.credentials["lwa"]["client_id"],
        }
        if profile_id is not None:
            headers["Amazon-Advertising-API-Scope"] = str(profile_id)
        return headers

    def spapi_headers(self, vendor_index: int = 0) -> dict[str, str]:
        """Headers an SP-API client sends for the vendor account at `vendor_index`."""
        vendor = self.credentials["vendor"][vendor_index]
        return {
            "x-amz-access-token": self.access_token(vendor["refresh_token"]),
            "user-agent": "amzlake-tests/0.1 (Language=Python/3.11)",
        }


def scenario_for_tests(**overrides: Any) -> Scenario:
    """A scenario for tests: fixed now, fast clock, short delays; `overrides` win."""
    data: dict[str, Any] = {
        "seed": 7,
        "time_scale": 600.0,
        "now": FIXED_NOW.isoformat(),
        "delays": {"ads_queue": 5, "ads_processing": 20, "spapi_queue": 5, "spapi_processing": 20,
                   "sigma": 0.3},
    }
    data.update(overrides)
    return scenario_from_dict(data, "test scenario")


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    """Start emulators with scenario overrides (e.g. faults=[...], time_scale=60); all are stopped."""
    # Imported here so unit tests run even while an API module is being written.
    from amzlake.emulator.server import EmulatorServer

    servers: list[tuple[EmulatorServer, httpx.Client]] = []

    def start(**overrides: Any) -> RunningEmulator:
        server = EmulatorServer(scenario_for_tests(**overrides)).start()
        client = httpx.Client(base_url=server.base_url, timeout=30.0)
        servers.append((server, client))
        creds = client.get("/_emulator/credentials").json()
        return RunningEmulator(server.base_url, server.state, creds, client)

    yield start
    for server, client in servers:
        client.close()
        server.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., RunningEmulator]) -> RunningEmulator:
    """An emulator with the default test scenario."""
    return make_emulator()
