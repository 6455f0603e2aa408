"""Where a benchmark ran: the CPU model, the instruction-set extensions the kernels use, the core count, the
runtime and library versions; and how busy the machine was (load average, CPU steal). No torch here.

Every benchmark record carries ``describe()`` (its ``extra["cpu"]`` and ``extra["versions"]``) and its one-line
form (the record's ``machine``): an int8 figure measured on an AVX-512 VNNI server and one measured on an AVX2
laptop differ by 2x and more, and a reader must be able to tell them apart.
"""

from __future__ import annotations

import contextlib
import os
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

# Extensions the convolution / matmul kernels of ONNX Runtime, XNNPACK and ExecuTorch dispatch on, by the flag
# /proc/cpuinfo spells them with, and the name shown.
X86_ISA = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_int8": "AMX-INT8",
}
ARM_ISA = {"asimd": "NEON", "asimddp": "dotprod", "i8mm": "i8mm", "fphp": "fp16", "sve": "SVE", "sve2": "SVE2"}

# Distribution names of the runtimes and libraries a latency depends on (absent ones are left out).
LIBRARIES = ("onnxruntime", "ai-edge-litert", "tflite-runtime", "executorch", "coremltools", "numpy")
RUNTIME_LIBRARY = {
    "onnxruntime": ("onnxruntime",),
    "litert": ("ai-edge-litert", "tflite-runtime"),
    "executorch": ("executorch",),
    "coreml": ("coremltools",),
}

CPUINFO = Path("/proc/cpuinfo")
STAT = Path("/proc/stat")
LOADAVG = Path("/proc/loadavg")


def parse_cpuinfo(text: str) -> tuple[str, list[str]]:
    """(CPU model, the ISA extensions of X86_ISA / ARM_ISA it has) from /proc/cpuinfo's text."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    names = [name for flag, name in {**X86_ISA, **ARM_ISA}.items() if flag in flags]
    return model, names


@cache
def cpu() -> dict[str, Any]:
    """``{"model", "isa", "cores", "arch"}`` of this machine (model "unknown" where /proc/cpuinfo is absent)."""
    model, isa = "", []
    with contextlib.suppress(OSError):
        model, isa = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    if not model and platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
    return {
        "model": model or platform.processor() or "unknown",
        "isa": isa,
        "cores": os.cpu_count() or 1,
        "arch": platform.machine(),
    }


def _sysctl(name: str) -> str:
    import subprocess

    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@cache
def versions() -> dict[str, str]:
    """Python, deepsquare and each installed runtime / library version."""
    found = {"python": platform.python_version()}
    for name in ("deepsquare", *LIBRARIES):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def runtime_version(runtime: str) -> str:
    """``onnxruntime 1.31.1``: the library behind a record's runtime name, with its version."""
    have = versions()
    for library in RUNTIME_LIBRARY.get(runtime, (runtime,)):
        if library in have:
            return f"{library} {have[library]}"
    return f"{runtime} (version unknown)"


def cpu_line(info: dict[str, Any] | None = None) -> str:
    """``AMD EPYC, 2 cores, x86_64 AVX2 FMA AVX-512 AVX-512 VNNI``."""
    info = info or cpu()
    isa = ", ".join(info["isa"]) or "no SIMD extension listed"
    return f"{info['model']}, {info['cores']} cores, {info['arch']} ({isa})"


def describe() -> str:
    """The record's ``machine``: host, OS, CPU model, cores and ISA extensions."""
    return f"{platform.node() or 'host'} ({platform.system()}; {cpu_line()})"


def cache_identity() -> dict[str, Any]:
    """What a cached measurement must share with this machine to be reused: CPU model, ISA, cores."""
    info = cpu()
    return {"cpu": info["model"], "isa": info["isa"], "cores": info["cores"], "arch": info["arch"]}


# --- how busy ------------------------------------------------------------------------------------------------


def load_snapshot() -> dict[str, float | None]:
    """The 1-minute load average and the CPU time counters (jiffies) ``steal`` and ``total`` of /proc/stat;
    None where this OS has none."""
    snapshot: dict[str, float | None] = {"load1": None, "steal": None, "total": None}
    with contextlib.suppress(OSError):
        snapshot["load1"] = os.getloadavg()[0]
    try:
        fields = STAT.read_text().splitlines()[0].split()
        values = [float(v) for v in fields[1:]]
        snapshot["total"] = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
        snapshot["steal"] = values[7] if len(values) > 7 else 0.0
    except (OSError, IndexError, ValueError):
        pass
    return snapshot


# The thresholds of the busy-machine warning (docs/guides/latency.md tells them).
BUSY_LOAD_PER_CORE = 1.0  # load average above the core count plus one (the bench itself): others competed
BUSY_STEAL_PCT = 5.0  # the hypervisor gave more than 5% of the CPU time to other guests
BUSY_INTERVAL = 1.20  # a ratio's 95% interval wider than high/low = 1.2 (about +-9%)


def busy_reasons(
    start: dict[str, float | None], end: dict[str, float | None], widest: float | None, cores: int | None = None
) -> list[str]:
    """Why the figures of a run between two load snapshots are noisy; [] when the machine looked idle.

    ``widest``: the largest high/low of the run's 95% ratio intervals (None when no ratio was measured)."""
    cores = cores or cpu()["cores"]
    reasons = []
    loads = [s["load1"] for s in (start, end) if s.get("load1") is not None]
    if loads and max(loads) > BUSY_LOAD_PER_CORE * cores + 1:
        reasons.append(f"load average {max(loads):.1f} on {cores} cores")
    steal = steal_pct(start, end)
    if steal is not None and steal > BUSY_STEAL_PCT:
        reasons.append(f"CPU steal {steal:.0f}%")
    if widest is not None and widest > BUSY_INTERVAL:
        reasons.append(f"a ratio's 95% interval spans x{widest:.2f} (high/low)")
    return reasons


def busy_warning(reasons: list[str]) -> str | None:
    """The one line a busy run prints; None when ``reasons`` is empty."""
    if not reasons:
        return None
    return (
        f"warning: the machine was busy ({'; '.join(reasons)}): the latencies are noisy, read the intervals, "
        "not the bare ratios; re-run with --time-budget SECONDS (more rounds) or on an idle machine"
    )


def steal_pct(start: dict[str, float | None], end: dict[str, float | None]) -> float | None:
    if None in (start.get("steal"), end.get("steal"), start.get("total"), end.get("total")):
        return None
    total = end["total"] - start["total"]  # type: ignore[operator]
    return round(100 * (end["steal"] - start["steal"]) / total, 2) if total > 0 else 0.0  # type: ignore[operator]
