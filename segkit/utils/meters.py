"""Running averages and time formatting for training logs."""
from __future__ import annotations

import datetime
from collections import defaultdict, deque


class WindowMeters:
    """Per-name averages over the last `window` updates (the values since the previous log line)."""

    def __init__(self, window: int = 20) -> None:
        self.window = max(1, int(window))
        self._values: dict[str, deque] = defaultdict(lambda: deque(maxlen=self.window))

    def update(self, **values: float) -> None:
        for name, value in values.items():
            self._values[name].append(float(value))

    def avg(self, name: str) -> float:
        values = self._values.get(name)
        return sum(values) / len(values) if values else float("nan")

    def averages(self, prefix: str = "") -> dict[str, float]:
        return {k: self.avg(k) for k in self._values if k.startswith(prefix)}


def format_eta(seconds: float) -> str:
    """`seconds` as h:mm:ss (days spelled out past 24 h)."""
    if seconds != seconds or seconds < 0:  # NaN before the first timed iteration
        return "?"
    return str(datetime.timedelta(seconds=int(round(seconds))))
