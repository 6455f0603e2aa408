"""The one benchmark record schema, wherever a latency was measured.

Local runtimes, the browser (``runtime="onnxruntime-web"``) and devices
(``runtime="tflite-benchmark_model"``, ``"coreml"``) all write this record, so their rows
join one table. Times are milliseconds.
"""

from __future__ import annotations

import json
import math
import platform
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchRecord:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} record: schema={data.get('schema')!r}")
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"max_ms", "extra"}
        if missing:
            raise ValueError(f"benchmark record lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in names})


def this_machine() -> str:
    return f"{platform.node() or 'host'} ({platform.system()} {platform.machine()}, {platform.processor() or 'cpu'})"


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list, q in [0, 100]."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


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
        extra=dict(extra or {}),
    )


def dump_records(records: list[BenchRecord]) -> str:
    return json.dumps([r.to_dict() for r in records], indent=2) + "\n"
