"""Progress of long loops: a tqdm bar on a terminal, a periodic log line elsewhere (nohup, CI, log.txt).

Only the main process reports. The log line is rate-limited by time, not by count, so neither a
fast loop nor a slow one floods the log, and a slow one still shows it is alive.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

from .comm import is_main_process

T = TypeVar("T")

LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"


def on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(
    iterable: Iterable[T],
    desc: str,
    total: int | None = None,
    unit: str = "it",
    every_s: float = 30.0,
    logger: logging.Logger | None = None,
    bar: bool | None = None,
) -> Iterator[T]:
    """Yield from `iterable`, reporting count, rate and ETA.

    `bar=None` picks a tqdm bar when stderr is a terminal; otherwise `logger` (default: "segkit") gets a
    line at most every `every_s` seconds, and a closing one when the loop ran at least that long.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not is_main_process():
        yield from iterable
        return
    if on_terminal() if bar is None else bar:
        yield from tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False)
        return
    log = logger or logging.getLogger("segkit")
    start = last = time.perf_counter()
    n = 0
    for n, item in enumerate(iterable, 1):
        yield item
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            log.info(tqdm.format_meter(n, total, now - start, unit=unit, prefix=desc, bar_format=LINE_FORMAT))
    if n and time.perf_counter() - start >= every_s:  # a closing line for loops long enough to have reported
        log.info(tqdm.format_meter(n, total, time.perf_counter() - start, unit=unit, prefix=desc, bar_format=LINE_FORMAT))
