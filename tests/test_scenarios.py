"""YAML call scenarios (tests/scenarios/*.yaml), each placed as a real simulated call."""
from __future__ import annotations

import pytest

from hotline_harness import Coverage, COVERAGE
from scenario_runner import build_hotline, load_scenarios, run_scenario

SCENARIOS = load_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(make_hotline, scenario) -> None:
    hotline = build_hotline(make_hotline, scenario)
    run_scenario(hotline, scenario)
