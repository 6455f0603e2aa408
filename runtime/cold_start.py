"""Cold start and memory of one model file, each measured in a fresh child process (no torch here).

What an app pays before its first answer: importing the runtime, loading the file (session or interpreter
creation), the first inference (lazy allocation, kernel selection, weight packing); and the peak resident
memory of the process that did it. A fresh process is started for each measurement, several times; the
medians are reported (the first process after a file was written can find it in the page cache like the
others: the medians are warm-disk figures, not a first boot's).

Peak memory is the child's high-water resident set at the end (``VmHWM``; ``ru_maxrss`` where /proc is
absent): Python, numpy and the runtime library included. ``base_rss_mb`` is the same after the imports, before
the file was loaded, so ``peak - base`` is what the model and its session added.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

# The library each runtime's runner imports (imported before the load is timed: import_ms on its own).
RUNTIME_MODULES = {
    "onnxruntime": "onnxruntime",
    "litert": "ai_edge_litert.interpreter",
    "executorch": "executorch.runtime",
}

# The peak resident memory of this process: VmHWM where /proc has it (ru_maxrss is inherited from the parent
# across fork and exec on Linux: a child of a 400 MB bench process would report 400 MB), else ru_maxrss.
PEAK_RSS = """
import resource
def peak_rss():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CHILD = (
    PEAK_RSS
    + """
import json, sys, time
import importlib
import numpy as np
from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.runners import open_model
fmt_name, path, meta, threads, size, dtype, module = json.loads(sys.argv[1])
fmt = FORMATS[fmt_name]
meta = BundleMeta.from_dict(meta) if meta else None
t0 = time.perf_counter()
if module:
    try:
        importlib.import_module(module)
    except ImportError:
        pass
t1 = time.perf_counter()
base = peak_rss()
runner = open_model(fmt, path, meta, threads)
t2 = time.perf_counter()
if dtype == "uint8" and hasattr(runner, "run_pixels"):
    runner.run_pixels(np.zeros((1, size, size, 3), np.uint8))
else:
    runner.run(np.zeros((1, 3, size, size), np.float32))
t3 = time.perf_counter()
peak = peak_rss()
print("COLD " + json.dumps({"import_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3, "first_ms": (t3 - t2) * 1e3,
                            "base_rss": base, "peak_rss": peak}))
"""
)


def rss_mb(value: float) -> float:
    """``peak_rss()`` in MB: kilobytes on Linux (VmHWM), bytes on macOS (ru_maxrss)."""
    return value / (1 << 20) if platform.system() == "Darwin" else value / 1024


def run_child(code: str, payload: list[Any], timeout_s: float = 300.0) -> dict[str, float]:
    """One fresh process running ``code`` with ``payload`` (JSON, argv[1]); its ``COLD {...}`` line parsed."""
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(payload)], capture_output=True, text=True, timeout=timeout_s
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("COLD ")), None)
    if done.returncode != 0 or line is None:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"the child process ended with status {done.returncode}")
    return json.loads(line[5:])


def summarize(samples: list[dict[str, float]]) -> dict[str, Any]:
    """Medians over the child processes, memory in MB."""
    medians = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    return {
        "import_ms": medians.get("import_ms"),
        "load_ms": medians["load_ms"],
        "first_ms": medians["first_ms"],
        "base_rss_mb": round(rss_mb(medians["base_rss"]), 1),
        "peak_rss_mb": round(rss_mb(max(s["peak_rss"] for s in samples)), 1),
        "starts": len(samples),
        "load_ms_all": [round(s["load_ms"], 3) for s in samples],
        "first_ms_all": [round(s["first_ms"], 3) for s in samples],
    }


def cold_start(
    fmt: str,
    runtime: str,
    path: Path,
    meta: dict[str, Any] | None,
    threads: int,
    input_size: int,
    input_dtype: str = "float32",
    starts: int = 3,
) -> dict[str, Any]:
    """Load time, first-inference time (medians) and peak RSS (the largest) over ``starts`` fresh processes.

    Raises RuntimeError with the child's last line when the file does not load or run."""
    payload = [fmt, str(path), meta, threads, input_size, input_dtype, RUNTIME_MODULES.get(runtime)]
    return summarize([run_child(CHILD, payload) for _ in range(max(1, starts))])
