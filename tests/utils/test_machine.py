"""segkit.utils.machine: CPU facts from /proc/cpuinfo, the compute limits they imply, library versions."""
from __future__ import annotations

import pytest

from segkit.utils.machine import (CpuInfo, compute_limits, library_versions, limit_ms, machine_name,
                                  read_cpu_info)

AMX_FLAGS = "fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"


def _cpuinfo(tmp_path, flags: str, mhz: str = "2100.000"):
    text = "".join(f"processor\t: {i}\nmodel name\t: Intel(R) Xeon(R) Platinum 8480C\ncpu MHz\t\t: {mhz}\n"
                   f"flags\t\t: {flags}\n\n" for i in range(2))
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return read_cpu_info(str(path), str(tmp_path / "no-cpufreq"))


def test_reads_model_clock_and_the_flags_that_matter(tmp_path):
    cpu = _cpuinfo(tmp_path, AMX_FLAGS)
    assert cpu.model == "Intel(R) Xeon(R) Platinum 8480C" and cpu.clock_ghz == pytest.approx(2.1)
    assert "cpu MHz" in cpu.clock_source
    assert cpu.flags == ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def test_cpufreq_maximum_wins_over_the_current_clock(tmp_path):
    (tmp_path / "max").write_text("3800000\n")  # kHz
    (tmp_path / "cpuinfo").write_text("model name\t: X\ncpu MHz\t: 800.0\nflags\t: avx2 fma\n")
    cpu = read_cpu_info(str(tmp_path / "cpuinfo"), str(tmp_path / "max"))
    assert cpu.clock_ghz == pytest.approx(3.8) and cpu.clock_source.endswith("max")


def test_limits_take_the_best_unit_per_precision(tmp_path):
    limits = compute_limits(_cpuinfo(tmp_path, AMX_FLAGS), threads=2)
    assert {p: limits[p]["ops_per_cycle"] for p in limits} == {"fp32": 64, "bf16": 1024, "int8": 2048}
    assert limits["fp32"]["gops"] == pytest.approx(2 * 64 * 2.1)
    # BiSeNetV1 at 512x1024 (59.2 GFLOPs) on 2 AVX-512 cores at 2.1 GHz: 220 ms.
    assert limit_ms(59.2, limits["fp32"]) == pytest.approx(220.2, abs=0.1)
    assert all(limits[p]["source"] for p in limits)


def test_an_avx2_cpu_has_no_bf16_limit_and_vnni_sets_int8(tmp_path):
    avx2 = compute_limits(_cpuinfo(tmp_path, "avx2 fma"))
    assert set(avx2) == {"fp32"} and avx2["fp32"]["ops_per_cycle"] == 32
    vnni = compute_limits(_cpuinfo(tmp_path, "avx2 fma avx512f avx512_vnni"))
    assert vnni["int8"]["unit"] == "AVX512-VNNI" and "bf16" not in vnni


def test_threads_cap_the_cores_and_no_clock_gives_no_time():
    cpu = CpuInfo("X", 4, None, "unknown", ("avx2", "fma"))
    limits = compute_limits(cpu, threads=8)
    assert limits["fp32"]["cores"] == 4 and "gops" not in limits["fp32"]
    assert limit_ms(10.0, limits["fp32"]) is None


def test_machine_name_is_a_file_name(tmp_path):
    cpu = _cpuinfo(tmp_path, AMX_FLAGS)
    assert machine_name(cpu) == f"intel-xeon-platinum-8480c-amx-{cpu.cores}c"


def test_library_versions_name_missing_packages():
    versions = library_versions(("torch", "no-such-distribution"))
    assert versions["torch"] and versions["no-such-distribution"] is None and versions["python"]
