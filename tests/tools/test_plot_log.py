"""tools/plot_log.py draws curves from a run folder and names what is missing."""
from __future__ import annotations

import os

from segkit.utils.events import EventWriter
from tools.plot_log import main


def test_plot_log_writes_curves(tmp_path, capsys):
    w = EventWriter(str(tmp_path))
    for it in range(1, 6):
        w.scalars(it, {"loss": 1.0 / it, "lr": 0.1})
    w.scalars(5, {"mIoU": 12.5})
    assert main([str(tmp_path)]) == 0
    assert os.path.getsize(tmp_path / "curves.png") > 1000


def test_plot_log_without_events_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "events.jsonl" in capsys.readouterr().err
