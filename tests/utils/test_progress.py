"""segkit.utils.progress: periodic lines off a terminal, a bar on one, silence for short loops."""
from __future__ import annotations

import logging

from segkit.utils import progress as progress_mod
from segkit.utils.progress import progress


class _Clock:
    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_periodic_lines_with_rate_and_eta(monkeypatch, caplog):
    monkeypatch.setattr(progress_mod.time, "perf_counter", _Clock(10.0))  # every item takes 10 s
    logger = logging.getLogger("test_progress")
    with caplog.at_level(logging.INFO, logger="test_progress"):
        assert list(progress(range(7), "eval", unit="img", every_s=30.0, logger=logger, bar=False)) == list(range(7))
    lines = [r.getMessage() for r in caplog.records]
    # every third item crosses 30 s, plus the closing line
    assert len(lines) == 3, lines
    assert lines[0].startswith("eval: 3/7 [") and "img" in lines[0] and "<" in lines[0]
    assert lines[-1].startswith("eval: 7/7")


def test_short_loops_stay_silent(caplog):
    logger = logging.getLogger("test_progress_quiet")
    with caplog.at_level(logging.INFO, logger="test_progress_quiet"):
        assert list(progress(iter([1, 2, 3]), "fast", logger=logger, bar=False)) == [1, 2, 3]
    assert not caplog.records


def test_bar_on_a_terminal_writes_to_stderr_not_the_log(capsys, caplog):
    logger = logging.getLogger("test_progress_bar")
    with caplog.at_level(logging.INFO, logger="test_progress_bar"):
        assert sum(progress(range(5), "bar", logger=logger, bar=True)) == 10
    assert "bar" in capsys.readouterr().err and not caplog.records
