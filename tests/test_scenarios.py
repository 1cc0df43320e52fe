"""YAML call scenarios (tests/scenarios/*.yaml), each placed as a real simulated call, once
with webhooks (<Gather>/<Record>) and once over Media Streams, unless it names its transports."""
from __future__ import annotations

import pytest

from hotline_harness import Coverage, COVERAGE
from scenario_runner import build_hotline, load_scenarios, run_scenario

SCENARIOS = load_scenarios()
RUNS = [(scenario, transport) for scenario in SCENARIOS
        for transport in scenario.get("transports", ["webhook", "stream"])]


@pytest.mark.parametrize(("scenario", "transport"), RUNS, ids=[f"{t}: {s['name']}" for s, t in RUNS])
def test_scenario(make_hotline, scenario, transport) -> None:
    hotline = build_hotline(make_hotline, scenario, transport)
    run_scenario(hotline, scenario)
