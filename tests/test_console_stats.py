"""The day's figures come from real simulated calls."""
from __future__ import annotations

from hotline_harness import Hotline
from ivr.config import SHANGHAI
from ivr.console.stats import day_figures


def test_day_figures_from_calls(hotline: Hotline) -> None:
    for phone in ("+8613800000002", "+8613900000003"):
        hotline.remember_language(phone)
    served = hotline.call("+8613800000002")  # status by keys: contained
    for keys in ("1", "567*#"):
        served.press(keys)
    served.hangup()
    person = hotline.call("+8613900000003")  # asks for a person
    person.press("0")
    person.hangup()
    gave_up = hotline.call("+8613800000002")  # hangs up at the callback number question
    gave_up.press("2")
    gave_up.hangup()
    booked = hotline.call("+8613800000002")
    for key in "2111":
        booked.press(key)
    booked.hangup()
    with hotline.rt.sessions() as db:
        figures = day_figures(db, hotline.clock.now().astimezone(SHANGHAI).date())
    assert (figures.calls, figures.finished, figures.contained) == (4, 4, 3)
    assert figures.containment == 0.75
    assert figures.handoffs_by_reason == {"pressed_0": 1}
    assert figures.drop_off_steps == {"confirm_own_number": 1}
    assert (figures.bookings_made, figures.bookings_cancelled) == (1, 0)
