"""segkit.utils.meters: the averages of a log line and the ETA's format."""
from __future__ import annotations

import math

import pytest

from segkit.utils.meters import WindowMeters, format_eta


def test_averages_cover_the_last_window_updates_per_name():
    meters = WindowMeters(window=3)
    for value in (1, 2, 3, 4, 5):
        meters.update(loss=value)
    meters.update(loss_aux=10.0)
    assert meters.avg("loss") == pytest.approx(4.0)  # 3, 4, 5: the first two fell out of the window
    assert meters.avg("loss_aux") == 10.0
    assert math.isnan(meters.avg("never_logged"))
    assert meters.averages() == {"loss": pytest.approx(4.0), "loss_aux": 10.0}
    assert meters.averages(prefix="loss_") == {"loss_aux": 10.0}


def test_a_window_below_one_keeps_the_last_value():
    meters = WindowMeters(window=0)
    meters.update(lr=0.1, time=2)
    meters.update(lr=0.05, time=4)
    assert meters.averages() == {"lr": 0.05, "time": 4.0}


@pytest.mark.parametrize("seconds,text", [(0, "0:00:00"), (59.6, "0:01:00"), (3661, "1:01:01"),
                                          (90000, "1 day, 1:00:00"), (float("nan"), "?"), (-1, "?")])
def test_eta_format(seconds, text):
    assert format_eta(seconds) == text
