"""The one benchmark record schema, wherever a latency was measured.

Local runtimes, the browser (``runtime="onnxruntime-web"``) and devices
(``runtime="tflite-benchmark_model"``, ``"coreml"``) all write this record, so their rows
join one table. Times are milliseconds.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA = "deepsquare-bench-record/1"


@dataclass
class BenchRecord:
    model: str  # arch, or the model file's name
    variant: str
    runtime: str  # onnxruntime | litert | coreml | onnxruntime-web | tflite-benchmark_model
    threads: int | None
    warmup: int
    runs: int
    mean_ms: float
    std_ms: float
    p50_ms: float | None
    p90_ms: float | None
    min_ms: float
    init_ms: float | None
    machine: str
    max_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # p95, memory, delegate, batch, ...
    schema: str = SCHEMA
    api: str | None = None  # the runtime's API that ran it (LiteRT: "CompiledModel" or "Interpreter"); None: unknown

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRecord:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} record: schema={data.get('schema')!r}")
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"max_ms", "extra", "api"}
        if missing:
            raise ValueError(f"benchmark record lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in names})


def this_machine() -> str:
    """Host, OS, CPU model, cores and the ISA extensions the kernels use (``deepsquare.runtime.machine``)."""
    from .machine import describe

    return describe()


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list, q in [0, 100]."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def quantile_interval(sorted_values: list[float], q: float) -> list[float]:
    """A distribution-free 95% interval of the q-th percentile (order statistics, normal approximation of the
    binomial): [low, high] among the values; the whole range when there are few values."""
    n = len(sorted_values)
    if n == 0:
        return [math.nan, math.nan]
    p = q / 100
    half = 1.96 * math.sqrt(n * p * (1 - p))
    low = max(0, math.floor(n * p - half) - 1)
    high = min(n - 1, math.ceil(n * p + half) - 1 + 1)
    return [sorted_values[low], sorted_values[high]]


def record_from_times(
    times_ms: list[float],
    *,
    model: str,
    variant: str,
    runtime: str,
    threads: int | None,
    warmup: int,
    init_ms: float | None,
    machine: str | None = None,
    extra: dict[str, Any] | None = None,
) -> BenchRecord:
    ordered = sorted(times_ms)
    return BenchRecord(
        model=model,
        variant=variant,
        runtime=runtime,
        threads=threads,
        warmup=warmup,
        runs=len(ordered),
        mean_ms=statistics.fmean(ordered),
        std_ms=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        p50_ms=percentile(ordered, 50),
        p90_ms=percentile(ordered, 90),
        min_ms=ordered[0],
        init_ms=init_ms,
        machine=machine or this_machine(),
        max_ms=ordered[-1],
        extra={"p50_ci95": quantile_interval(ordered, 50), "p90_ci95": quantile_interval(ordered, 90), **(extra or {})},
    )


def dump_records(records: list[BenchRecord]) -> str:
    return json.dumps([r.to_dict() for r in records], indent=2) + "\n"
