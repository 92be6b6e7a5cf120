"""The machine a speed figure belongs to: CPU model, instruction-set flags, clock, and its compute limits.

A latency means little without the hardware's ceiling next to it. `compute_limits` turns the CPU's flags
into peak operations per second for each precision, from per-core, per-cycle figures stated here with
their source (`PEAKS`), the cores used and the clock:

    limit (ms) = GFLOPs of the forward pass / (cores x operations per cycle per core x clock)

The clock is read from the machine (/proc/cpuinfo "cpu MHz", or cpufreq's maximum when the kernel
exposes it); a CPU that turbos above it can beat the stated limit, which is then a lower bound on the
clock it ran at. The figures are peaks of the matrix units alone: memory traffic, non-matrix operators
and the convolution's shape keep real runtimes above them.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from dataclasses import dataclass

# The instruction-set extensions that decide which kernels a runtime can use (names as /proc/cpuinfo spells them).
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Peak:
    """Operations per cycle per core of one unit (a multiply-add counts as 2), and where the figure comes from."""

    precision: str  # fp32, bf16 or int8
    unit: str  # the instructions that reach it
    ops_per_cycle: int
    needs: tuple[str, ...]  # CPU flags that must all be present
    source: str


PEAKS = (
    Peak("fp32", "AVX-512 FMA", 64, ("avx512f",),
         "2 FMA units x 16 fp32 lanes x 2 (Intel 64 and IA-32 Optimization Reference Manual, Xeon with 2 FMA ports)"),
    Peak("fp32", "AVX2 FMA", 32, ("avx2", "fma"), "2 FMA units x 8 fp32 lanes x 2"),
    Peak("bf16", "AMX-BF16 (TMUL)", 1024, ("amx_bf16", "amx_tile"),
         "Intel: 1024 BF16 operations per cycle per core on 4th Gen Xeon (Architecture Day 2021; "
         "TDPBF16PS: 16x16x32 multiply-adds every 16 cycles)"),
    Peak("bf16", "AVX512-BF16", 128, ("avx512_bf16",), "VDPBF16PS: 16 lanes x 2 bf16 pairs x 2, 2 units"),
    Peak("int8", "AMX-INT8 (TMUL)", 2048, ("amx_int8", "amx_tile"),
         "Intel: 2048 INT8 operations per cycle per core on 4th Gen Xeon (Architecture Day 2021; "
         "TDPBUSD: 16x16x64 multiply-adds every 16 cycles)"),
    Peak("int8", "AVX512-VNNI", 256, ("avx512_vnni",), "VPDPBUSD: 16 lanes x 4 int8 pairs x 2, 2 units"),
    Peak("int8", "AVX-VNNI", 128, ("avx_vnni",), "VPDPBUSD on 256 bits: 8 lanes x 4 int8 pairs x 2, 2 units"),
)


@dataclass(frozen=True)
class CpuInfo:
    model: str
    cores: int  # logical CPUs this process may run on
    clock_ghz: float | None
    clock_source: str
    flags: tuple[str, ...]  # those of FLAGS the CPU has


def _cpuinfo_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor's entry
            fields[key.strip()] = value.strip()
    return fields


def read_cpu_info(cpuinfo_path: str = "/proc/cpuinfo",
                  cpufreq_path: str = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") -> CpuInfo:
    """The CPU of this machine (on a system without /proc/cpuinfo: the platform's name, no flags or clock)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open(cpuinfo_path) as f:
            fields = _cpuinfo_fields(f.read())
    except OSError:
        return CpuInfo(platform.processor() or platform.machine(), cores, None, "unknown", ())
    present = set(fields.get("flags", "").split())
    clock, source = None, "unknown"
    try:
        with open(cpufreq_path) as f:
            clock, source = int(f.read().strip()) / 1e6, cpufreq_path  # kHz
    except (OSError, ValueError):
        mhz = fields.get("cpu MHz")
        if mhz and re.fullmatch(r"[0-9.]+", mhz):
            clock, source = float(mhz) / 1000, f"{cpuinfo_path} 'cpu MHz'"
    return CpuInfo(fields.get("model name", platform.machine()), cores, clock, source,
                   tuple(f for f in FLAGS if f in present))


def compute_limits(cpu: CpuInfo, threads: int | None = None) -> dict[str, dict]:
    """precision -> {unit, ops_per_cycle, source, gops} of the best unit the CPU has, over `threads` cores.

    gops = cores x ops per cycle x clock (GHz); absent without a known clock. A precision the CPU has no
    unit for (bf16 or int8 on an AVX2-only CPU) is left out.
    """
    cores = min(threads or cpu.cores, cpu.cores)
    limits: dict[str, dict] = {}
    for peak in PEAKS:  # best unit first within each precision
        if peak.precision in limits or not all(f in cpu.flags for f in peak.needs):
            continue
        entry = {"unit": peak.unit, "ops_per_cycle": peak.ops_per_cycle, "source": peak.source, "cores": cores}
        if cpu.clock_ghz:
            entry["gops"] = cores * peak.ops_per_cycle * cpu.clock_ghz
        limits[peak.precision] = entry
    return limits


def limit_ms(gflops: float, limit: dict) -> float | None:
    """The time (ms) the forward pass takes at the unit's peak; None without a clock."""
    return 1000.0 * gflops / limit["gops"] if limit.get("gops") else None


def library_versions(names: tuple[str, ...] = ("torch", "onnx", "onnxscript", "onnxruntime", "openvino",
                                               "numpy", "opencv-python")) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent), and Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_name(cpu: CpuInfo) -> str:
    """A file-name-safe key of the machine: CPU model, widest matrix unit, core count
    ("intel-xeon-processor-amx-2c"). A virtual machine often names its CPU vaguely; the unit tells them apart."""
    model = re.sub(r"\((r|tm)\)|cpu|@.*$", "", cpu.model.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", model).strip("-") or "cpu"
    unit = next((u for u, flag in (("amx", "amx_tile"), ("avx512", "avx512f"), ("avx2", "avx2")) if flag in cpu.flags), "")
    return "-".join(part for part in (slug, unit, f"{cpu.cores}c") if part)

