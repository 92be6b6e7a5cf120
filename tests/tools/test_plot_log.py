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


def test_an_unwritable_picture_path_is_one_line(tmp_path, capsys):
    EventWriter(str(tmp_path)).scalars(1, {"loss": 1.0})
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main([str(tmp_path), "--out", str(blocker / "c.png")]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write --out {blocker}/c.png: ")
