"""Scenario files, --fault flags and the fault plan's matching rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from amzlake.emulator.faults import (
    Fault,
    FaultKind,
    FaultPlan,
    Outcome,
    load_scenario,
    parse_fault_flag,
    scenario_from_dict,
)
from amzlake.errors import ScenarioError


def test_scenario_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'seed = 3\ntime_scale = 600\nnow = "2026-01-05T10:00:00Z"\n'
        '[[faults]]\nkind = "throttle"\noperation = "spapi.createReport"\ntimes = 2\n'
        '[[faults]]\nkind = "truncate"\nfraction = 0.25\n'
    )
    s = load_scenario(path)
    assert (s.seed, s.time_scale, s.now.year) == (3, 600, 2026)
    assert [f.kind for f in s.faults] == [FaultKind.THROTTLE, FaultKind.TRUNCATE]
    assert s.faults[1].operation == "*.download"  # default follows the kind


def test_scenario_file_json(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"seed": 9, "faults": [{"kind": "stuck", "report_type": "sp*"}]}')
    s = load_scenario(path)
    assert s.faults[0].matches("ads.createAsyncReport", "spCampaigns")
    assert not s.faults[0].matches("ads.createAsyncReport", "sbCampaigns")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"faults": [{"kind": "throtle"}]}, "faults.0.kind"),
        ({"time_scale": -1}, "time_scale"),
        ({"faults": [{"kind": "server_error", "status": 418}]}, "status must be one of"),
        ({"faults": [{"kind": "token_expiry"}]}, "token_expiry needs seconds"),
        ({"now": "2026-01-01T00:00:00"}, "time zone"),
        ({"colour": "red"}, "colour"),
        ({"faults": [{"kind": "truncate", "fraction": 1.5}]}, "faults.0.fraction"),
    ],
)
def test_bad_scenarios_name_the_problem(data: dict, expected: str) -> None:
    with pytest.raises(ScenarioError, match=expected.replace(".", r"\.")):
        scenario_from_dict(data, "bad.toml")


def test_bad_scenario_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("seed = = 3")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(broken)


def test_fault_flags() -> None:
    f = parse_fault_flag("server_error:operation=ads.*,status=500,times=2")
    assert (f.kind, f.operation, f.status, f.times) == (FaultKind.SERVER_ERROR, "ads.*", 500, 2)
    with pytest.raises(ScenarioError, match="expected key=value"):
        parse_fault_flag("throttle:times")
    with pytest.raises(ScenarioError, match="kind"):
        parse_fault_flag("explode")


def test_after_and_times_limit_firing() -> None:
    plan = FaultPlan([Fault(kind=FaultKind.THROTTLE, operation="spapi.*", after=2, times=3)], seed=1)
    fired = [plan.call_fault("spapi.getReport") is not None for _ in range(8)]
    assert fired == [False, False, True, True, True, False, False, False]
    assert plan.call_fault("ads.getAsyncReport") is None
    summary = plan.summary()[0]
    assert (summary["matched"], summary["fired"]) == (8, 3)


def test_probability_is_seeded() -> None:
    def run() -> list[bool]:
        plan = FaultPlan([Fault(kind=FaultKind.SERVER_ERROR, probability=0.3)], seed=5)
        return [plan.call_fault("ads.x") is not None for _ in range(200)]

    first = run()
    assert first == run()
    assert 30 < sum(first) < 90


def test_report_faults_and_token_lifetime() -> None:
    plan = FaultPlan(
        [
            Fault(kind=FaultKind.FATAL, reason="boom", report_type="GET_VENDOR_*"),
            Fault(kind=FaultKind.CANCELLED),
            Fault(kind=FaultKind.TOKEN_EXPIRY, seconds=120, times=1),
        ],
        seed=1,
    )
    fate = plan.report_fault("spapi", "GET_VENDOR_SALES_REPORT")
    assert fate is not None and (fate.outcome, fate.reason) == (Outcome.FAILED, "boom")
    fate = plan.report_fault("spapi", "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT")
    assert fate is not None and fate.outcome == Outcome.CANCELLED
    assert plan.report_fault("ads", "spCampaigns") is None  # cancelled defaults to SP-API only
    assert plan.token_lifetime(3600) == 120
    assert plan.token_lifetime(3600) == 3600
