"""One logger for the console and OUTPUT_DIR/log.txt; only the main process writes."""
from __future__ import annotations

import logging
import os
import sys


def setup_logger(output_dir: str | None = None, rank: int = 0, name: str = "segkit") -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("[%(asctime)s %(name)s] %(message)s", datefmt="%m/%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(output_dir, "log.txt"), mode="a", encoding="utf-8")
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


def log_to_files(message: str, level: int = logging.ERROR, name: str = "segkit") -> None:
    """Write `message` to the log files of logger `name` only (OUTPUT_DIR/log.txt), not to the console.

    The tools print a run-ending error on stderr themselves; this keeps the same line in log.txt, so a run
    under nohup does not just stop without saying why.
    """
    logger = logging.getLogger(name)
    record = logger.makeRecord(name, level, __file__, 0, message, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
