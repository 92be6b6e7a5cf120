"""What a benchmark's runtimes need beyond `pip install -e .`, checked before anything is timed.

A runtime whose package is missing is named with its extra before anything is timed, rather than left out of
the table without a word or failing after the runtimes before it.
"""
from __future__ import annotations

from typing import Sequence

import torch

from segkit.deploy.fastpath import exported_packages
from segkit.deploy.runtime import DEPLOY_INSTALL, missing_packages
from segkit.deploy.speed import CPU_VARIANTS, Variant, variants


def runnable(requested: Sequence[Variant], device: str | torch.device = "cpu") -> tuple[list[Variant], str]:
    """Those of `requested` this machine can run on `device`, and one line naming the others and what they
    lack ("" when none is left out)."""
    kind = torch.device(device).type
    offered = {v.name for v in variants(device)}
    ok: list[Variant] = []
    packages: dict[str, None] = {}
    left_out: dict[str, list[str]] = {}  # reason -> variant names
    for v in requested:
        # Named here rather than taken from speed.variants, which only leaves such a runtime out.
        missing = missing_packages(exported_packages(v.runtime)) if v.runtime in ("onnx", "openvino") else []
        if missing:
            packages.update(dict.fromkeys(missing))
            left_out.setdefault("packages", []).append(v.name)
        elif v.name in offered:
            ok.append(v)
        elif kind == "cpu" and v in CPU_VARIANTS:  # its packages are there: the CPU lacks the bf16 unit
            left_out.setdefault("this CPU has no bf16 unit (AMX or AVX512-BF16)", []).append(v.name)
        else:
            left_out.setdefault(f"not a runtime of device {kind}", []).append(v.name)
    why = [f"{', '.join(names)}: " + (f"{', '.join(packages)} not installed ({DEPLOY_INSTALL})"
                                      if reason == "packages" else reason)
           for reason, names in left_out.items()]
    return ok, "; ".join(why)
