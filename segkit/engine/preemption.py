"""Stopping a run when the cluster asks, and starting it again when torchrun restarts it.

SIGTERM and SIGUSR1 (what SLURM and Kubernetes send before they kill a job) and Ctrl-C (SIGINT) only set
a flag: the trainer all-reduces it with the step's non-finite check, so every process sees the request at
the same iteration, finishes that iteration, writes its checkpoint atomically and exits with
EXIT_PREEMPTED. A second signal while the checkpoint is written changes nothing: the handler still only
sets the flag, and a SIGKILL that follows finds the previous checkpoint intact (atomic writes).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

# sysexits.h EX_TEMPFAIL: "a temporary failure; the user is invited to retry". A job script can requeue on it.
EXIT_PREEMPTED = 75
STOP_SIGNALS = tuple(s for s in (signal.SIGTERM, getattr(signal, "SIGUSR1", None), signal.SIGINT) if s is not None)

logger = logging.getLogger("segkit")


class Preempted(SystemExit):
    """Training stopped on a signal after saving the current iteration; exits the process with EXIT_PREEMPTED."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_PREEMPTED)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StopRequest:
    """A flag the stop signals set, installed for the duration of a `with` block (main thread only).

    Outside the main thread (signal handlers cannot be installed there) the flag can still be set by
    `request()`, e.g. by an embedding application.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def request(self, name: str = "a stop request") -> None:
        if self.signal_name is None:
            self.signal_name = name
            logger.warning("%s received: stopping after this iteration, which is saved first", name)
        else:
            logger.warning("%s received again: the checkpoint is being written, then the run stops", name)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.request(signal.Signals(signum).name)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def elastic_restart_count() -> int:
    """How often torchrun has restarted this worker group (TORCHELASTIC_RESTART_COUNT; 0 outside torchrun)."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def resume_flags(resume: bool, overwrite: bool) -> tuple[bool, bool]:
    """(resume, overwrite) for this start: a torchrun restart continues its own run whatever the command line
    says, and never replaces it (`--overwrite` applied to the first start only)."""
    if elastic_restart_count() > 0:
        return True, False
    return resume, overwrite
