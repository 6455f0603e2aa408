"""Parse the output of TensorFlow Lite's ``benchmark_model`` into benchmark records.

It copes with the formats seen across versions and devices: plain lines, ``INFO: ``
prefixes, ``adb logcat`` lines (``I tflite  : ``), with or without p5/median/p95, "Peak
memory footprint" or "Memory footprint delta", and averages in scientific notation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .records import BenchRecord

_PREFIX = re.compile(r"^(?:INFO:\s*|[IWE]\s+tflite\s*:\s*|.*?\btflite\s*:\s*)")
_STATS = re.compile(r"\bcount=(\d+)(.*)")
_PAIR = re.compile(r"(\w+)=([-+0-9.eE]+)")
_TIMINGS = re.compile(
    r"Inference timings in us:\s*Init:\s*([-+0-9.eE]+),\s*First inference:\s*([-+0-9.eE]+),\s*"
    r"Warmup \(avg\):\s*([-+0-9.eE]+),\s*Inference \(avg\):\s*([-+0-9.eE]+)"
)
_MEMORY = re.compile(
    r"(Peak memory footprint|Memory footprint delta)[^:]*\(MB\):\s*init=([0-9.eE+-]+)\s+overall=([0-9.eE+-]+)"
)
_THREADS = re.compile(r"(?:Num threads|#threads used for CPU inference):\s*\[(\d+)\]")
_FLAG = re.compile(r"(Use xnnpack|Use gpu|Use nnapi|Use hexagon|Min num runs|Num runs):\s*\[([^\]]*)\]")


class BenchmarkOutputError(ValueError):
    """Text that does not contain a benchmark_model result."""


@dataclass
class BenchmarkModelResult:
    steady: dict[str, float]  # count, min, max, avg, std, (p5, median, p95) in microseconds
    warmup: dict[str, float] | None
    init_us: float | None
    first_us: float | None
    memory_mb: dict[str, float] = field(default_factory=dict)
    threads: int | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def record(self, *, model: str, variant: str, machine: str, runtime: str = "tflite-benchmark_model") -> BenchRecord:
        us = self.steady

        def ms(key: str) -> float | None:
            return us[key] / 1000 if key in us else None

        extra: dict[str, Any] = {"p5_ms": ms("p5"), "p95_ms": ms("p95")}
        if self.first_us is not None:
            extra["first_inference_ms"] = self.first_us / 1000
        extra.update(self.memory_mb)
        extra.update({k.lower().replace(" ", "_"): v for k, v in self.settings.items()})
        return BenchRecord(
            model=model,
            variant=variant,
            runtime=runtime,
            threads=self.threads,
            warmup=int(self.warmup["count"]) if self.warmup else 0,
            runs=int(us["count"]),
            mean_ms=us["avg"] / 1000,
            std_ms=us.get("std", 0.0) / 1000,
            p50_ms=ms("median"),
            p90_ms=None,  # benchmark_model reports p5/median/p95, not p90
            min_ms=us.get("min", us["avg"]) / 1000,
            init_ms=self.init_us / 1000 if self.init_us is not None else None,
            machine=machine,
            max_ms=ms("max"),
            extra={k: v for k, v in extra.items() if v is not None},
        )


def parse_benchmark_output(text: str) -> BenchmarkModelResult:
    stats: list[dict[str, float]] = []
    timings = None
    memory: dict[str, float] = {}
    threads = None
    settings: dict[str, str] = {}
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw.strip())
        if m := _TIMINGS.search(line):
            timings = [float(v) for v in m.groups()]
        elif m := _STATS.search(line):
            values = {k: float(v) for k, v in _PAIR.findall(m.group(2))}
            values["count"] = float(m.group(1))
            stats.append(values)
        elif m := _MEMORY.search(line):
            kind = "peak" if m.group(1).startswith("Peak") else "delta"
            memory = {f"{kind}_init_mb": float(m.group(2)), f"{kind}_overall_mb": float(m.group(3))}
        elif m := _THREADS.search(line):
            threads = int(m.group(1))
        elif m := _FLAG.search(line):
            settings[m.group(1)] = m.group(2)
    full = [s for s in stats if "avg" in s]
    if not full:
        raise BenchmarkOutputError("no 'count=... avg=...' line: is this benchmark_model output?")
    steady = full[-1]
    if timings is not None:  # the summary line names the steady-state average: pick that block
        steady = min(full, key=lambda s: abs(s["avg"] - timings[3]))
    index = stats.index(steady)
    warmup = stats[index - 1] if index > 0 else None
    return BenchmarkModelResult(
        steady=steady,
        warmup=warmup,
        init_us=timings[0] if timings else None,
        first_us=timings[1] if timings else None,
        memory_mb=memory,
        threads=threads,
        settings=settings,
    )
