"""segkit.utils.events: JSON lines that survive a crash and a resume, TensorBoard mirrored on request."""
from __future__ import annotations

import os
import sys

import numpy as np

from segkit.utils.events import EVENTS_FILE, EventWriter, draw_curves, read_events


def test_scalars_append_and_non_finite_values_are_dropped(tmp_path):
    w = EventWriter(str(tmp_path))
    w.scalars(10, {"loss": 1.5, "lr": 0.01})
    w.scalars(20, {"loss": float("nan"), "mIoU": 40.0}, prefix="")
    w.close()
    assert read_events(str(tmp_path / EVENTS_FILE)) == [
        {"iteration": 10, "loss": 1.5, "lr": 0.01}, {"iteration": 20, "mIoU": 40.0}]


def test_resume_drops_events_past_the_start_and_a_torn_line(tmp_path):
    w = EventWriter(str(tmp_path))
    for it in (10, 20, 30):
        w.scalars(it, {"loss": float(it)})
    with open(tmp_path / EVENTS_FILE, "a") as f:
        f.write('{"iteration": 40, "lo')  # killed mid-write
    EventWriter(str(tmp_path), start_iter=20).scalars(30, {"loss": 0.5})
    assert [(r["iteration"], r["loss"]) for r in read_events(str(tmp_path / EVENTS_FILE))] == [(10, 10.0), (20, 20.0), (30, 0.5)]


def test_tensorboard_mirror_writes_event_files(tmp_path):
    w = EventWriter(str(tmp_path), tensorboard=True)
    w.scalars(1, {"loss": 1.0})
    w.images(1, "val", [np.zeros((8, 8, 3), dtype=np.uint8)])
    w.close()
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tb"))


def test_disabled_writer_writes_nothing(tmp_path):
    w = EventWriter(str(tmp_path / "x"), enabled=False)
    w.scalars(1, {"loss": 1.0})
    assert not (tmp_path / "x").exists()


def test_curves_skipped_without_matplotlib_say_so(tmp_path, monkeypatch, segkit_log):
    w = EventWriter(str(tmp_path))
    w.scalars(10, {"loss": 1.0})
    w.close()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert draw_curves(str(tmp_path)) is None
    lines = [r.getMessage() for r in segkit_log.records]
    assert len(lines) == 1 and "curves.png skipped" in lines[0] and 'pip install -e ".[vis]"' in lines[0]
    assert not (tmp_path / "curves.png").exists()


def test_nothing_is_said_without_events(tmp_path, monkeypatch, segkit_log):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert draw_curves(str(tmp_path)) is None and not segkit_log.records
