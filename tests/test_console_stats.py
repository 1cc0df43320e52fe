"""The day's figures come from real simulated calls."""
from __future__ import annotations

from hotline_harness import Hotline
from ivr.config import SHANGHAI
from ivr.console.stats import day_figures


def test_day_figures_from_calls(hotline: Hotline) -> None:
    hotline.a_day_of_calls()
    with hotline.rt.sessions() as db:
        figures = day_figures(db, hotline.clock.now().astimezone(SHANGHAI).date())
    assert (figures.calls, figures.finished, figures.contained) == (4, 4, 3)
    assert figures.containment == 0.75
    assert figures.handoffs_by_reason == {"pressed_0": 1}
    assert figures.drop_off_steps == {"confirm_own_number": 1}
    assert (figures.bookings_made, figures.bookings_cancelled) == (1, 0)
