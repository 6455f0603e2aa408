"""Per-op times mapped back to PyTorch modules: the op map beside a model file, the attribution of each
runtime event to an op of that map, and the per-module / per-kind sums (no torch here).

The op map (``model.onnx.modules.json``, written at export by ``deepsquare.export.op_map``) lists every op of
the shipped graph with its module path (``stage3.2.attention``), the unit it belongs to (``stage3.2``) and its
kind (``Square-Excitation squeeze``). A runtime renames and fuses ops: ONNX Runtime's NCHWc pass names a fused
Conv+ReLU after the ReLU's output tensor (``relu_3_nchwc``), and inserts layout reorders of its own
(``ReorderInput_token_32``, ``ReorderOutput``) that no exported node matches. :class:`OpMap` resolves each
name to the op it came from, and a reorder to the nearest mapped op in execution order (a ReorderInput to the
op after it, a ReorderOutput to the op before it), with the kind :data:`LAYOUT_REORDER`.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OP_MAP_SCHEMA = "deepsquare-op-map/1"
OP_MAP_SUFFIX = ".modules.json"
OTHER = "other"  # an op no module claims (graph glue the exporter added at the model's top level)
UNMAPPED = "unmapped"  # an event no op of the map explains
LAYOUT_REORDER = "layout reorder (runtime-inserted)"  # NCHWc reorders, NHWC transposes
_RENAMED = re.compile(r"(/duplicated|_nchwc|_token_\d+|_fused|_kernel_time)+$")
# Ops a runtime adds to the graph it was given (ONNX Runtime: NCHWc reorders; for int8 kernels, NHWC transposes and
# the Q/DQ pairs around them), by name: none of them is in the op map.
INSERTED = re.compile(r"^(ReorderInput|ReorderOutput|Transpose|QuantizeLinear|DequantizeLinear)(_token_\d+)?$")
FORWARD = ("ReorderInput", "QuantizeLinear")  # these feed the op after them; the others follow the op before
QDQ = "int8 quantize/dequantize"


class OpProfileError(ValueError):
    """A model without an op map, a damaged map, or a trace that does not hold what the profiler needs."""


def op_map_path(model_file: Path) -> Path:
    """Where the op map of ``model_file`` lives: beside it, ``<file name>.modules.json``."""
    return model_file.with_name(model_file.name + OP_MAP_SUFFIX)


@dataclass(frozen=True)
class MapEntry:
    name: str
    type: str
    module: str | None
    unit: str
    kind: str


class OpMap:
    """The op map of one model file, indexed by op name and by output tensor name."""

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("schema") != OP_MAP_SCHEMA or not isinstance(data.get("ops"), list):
            raise OpProfileError(f"not an op map of schema {OP_MAP_SCHEMA} (schema {data.get('schema')!r})")
        self.format = data.get("format", "")
        self.by_name: dict[str, MapEntry] = {}
        self.by_output: dict[str, MapEntry] = {}
        self.inputs: dict[str, list[str]] = {}
        for op in data["ops"]:
            module = op.get("module")
            entry = MapEntry(op["name"], op["type"], module, op.get("unit") or unit_of(module), op["kind"])
            self.by_name[entry.name] = entry
            self.inputs[entry.name] = list(op.get("inputs", []))
            for output in op.get("outputs", []):
                self.by_output[output] = entry

    @classmethod
    def load(cls, model_file: Path) -> OpMap:
        path = op_map_path(model_file)
        if not path.is_file():
            raise OpProfileError(
                f"{model_file.name} has no op map ({path.name} is missing): it was exported before deepsquare wrote "
                "them; re-export it (deepsquare export) or profile its checkpoint"
            )
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise OpProfileError(f"{path} is not a readable op map ({exc})") from exc

    def resolve(self, name: str, op_type: str) -> tuple[MapEntry | None, str]:
        """The op an event of runtime op ``name`` (type ``op_type``) ran, and a note on how it was found."""
        entry = self.by_name.get(name) or self.by_output.get(name)
        note = ""
        if entry is None:
            base = _RENAMED.sub("", name)
            entry = self.by_name.get(base) or self.by_output.get(base) or self.by_name.get(f"node_{base}")
            note = f"renamed by the runtime ({name})" if entry else ""
        if entry is None:
            return None, ""
        wanted = op_type.removeprefix("Fused")
        if wanted != entry.type:  # a fusion named after its last op (Conv+ReLU named after the ReLU)
            producer = self._producer_of_type(entry, wanted)
            if producer is not None:
                return producer, f"{producer.type} fused with {entry.type}"
        return entry, note

    def _producer_of_type(self, entry: MapEntry, op_type: str, hops: int = 3) -> MapEntry | None:
        frontier = [entry]
        for _ in range(hops):
            upstream = [self.by_output[t] for e in frontier for t in self.inputs.get(e.name, []) if t in self.by_output]
            for candidate in upstream:
                if candidate.type == op_type:
                    return candidate
            frontier = upstream
        return None


def unit_of(module: str | None, depth: int = 2) -> str:
    """The row a module's ops are summed into when the map names no unit: its first ``depth`` path parts."""
    if module is None:
        return UNMAPPED
    return ".".join(module.split(".")[:depth]) if module else "(model)"


@dataclass
class OpTime:
    """One op's median time per run (ms), and where it comes from."""

    name: str
    op_type: str
    module: str | None
    unit: str
    kind: str
    ms: float
    calls: int = 1  # events per run
    note: str = ""


@dataclass
class RuntimeProfile:
    """The per-op profile of one model file in one runtime over ``runs`` timed rounds."""

    runtime: str
    model: str  # a label (the variant)
    file: str
    ops: list[OpTime]
    whole_ms: float  # the runtime's own whole-model time of the same runs (median)
    wall_ms: float | None = None  # the caller's clock around each profiled run (median)
    plain_ms: float | None = None  # the same model without the profiler, interleaved (median)
    whole_min_ms: float | None = None  # the fastest profiled run (the least preempted)
    runs: int = 0
    threads: int = 1
    notes: list[str] = field(default_factory=list)
    run_coverage: list[float] = field(default_factory=list)  # per run: its op sum / its whole-model time

    def __post_init__(self) -> None:
        self.run_coverage = list(self.run_coverage)

    @property
    def op_sum_ms(self) -> float:
        return sum(op.ms for op in self.ops)

    @property
    def coverage(self) -> float:
        """Each run's op sum over that run's whole-model time, the median over runs (1.0: every microsecond of the
        run is in an op); without per-run figures, the sum of the per-op medians over the median run."""
        if self.run_coverage:
            return statistics.median(self.run_coverage)
        return self.op_sum_ms / self.whole_ms if self.whole_ms else float("nan")

    def by(self, key: str) -> list[tuple[str, float, int]]:
        """(unit or kind or module, ms per run, op count), in first-run order."""
        sums: dict[str, list[float]] = {}
        for op in self.ops:
            row = sums.setdefault(getattr(op, key) or UNMAPPED, [0.0, 0])
            row[0] += op.ms
            row[1] += 1
        return [(name, ms, int(count)) for name, (ms, count) in sums.items()]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(op_sum_ms=self.op_sum_ms, coverage=self.coverage)
        data["units"] = [{"unit": u, "ms": ms, "ops": n} for u, ms, n in self.by("unit")]
        data["kinds"] = [{"kind": k, "ms": ms, "ops": n} for k, ms, n in self.by("kind")]
        return data


def attribute(events: list[list[tuple[str, str, float]]], op_map: OpMap) -> list[OpTime]:
    """Median time per run of each runtime op, mapped to modules (medians: a round the OS preempted moves no row).
    ``events``: per run, (name, op type, ms) in execution order; every run holds the ops of one graph."""
    if not events:
        raise OpProfileError("no profiled run to attribute")
    per_run: list[dict[str, float]] = []
    for run in events:
        sums: dict[str, float] = {}
        for name, _, ms in run:
            sums[name] = sums.get(name, 0.0) + ms
        per_run.append(sums)
    first = list({name: (name, op_type) for name, op_type, _ in events[0]}.values())  # one row per op
    resolved = [op_map.resolve(name, op_type) for name, op_type in first]
    ops = []
    for index, ((name, op_type), (entry, note)) in enumerate(zip(first, resolved, strict=True)):
        if entry is None and INSERTED.match(name):
            step = 1 if op_type in FORWARD else -1
            entry = _neighbour(resolved, index, step) or _neighbour(resolved, index, -step)
            kind = QDQ if op_type.endswith("QuantizeLinear") else LAYOUT_REORDER
            note = f"{op_type} inserted by the runtime, next to this module's op"
        else:
            kind = entry.kind if entry else UNMAPPED
        calls = round(sum(1 for e in events[0] if e[0] == name))
        ms = statistics.median(run.get(name, 0.0) for run in per_run)
        module = entry.module if entry else None
        ops.append(OpTime(name, op_type, module, entry.unit if entry else UNMAPPED, kind, ms, calls, note))
    return ops


def _neighbour(resolved: list[tuple[MapEntry | None, str]], index: int, step: int) -> MapEntry | None:
    i = index + step
    while 0 <= i < len(resolved):
        if resolved[i][0] is not None:
            return resolved[i][0]
        i += step
    return None


def parse_ort_trace(
    events: list[dict[str, Any]], skip_runs: int = 0
) -> tuple[list[list[tuple[str, str, float]]], list[float]]:
    """ONNX Runtime's profile JSON -> (per run: (node name, op type, ms) in order, per run: model_run ms).

    The first ``skip_runs`` runs (the warm-up) are left out. A node event belongs to the ``model_run`` event
    whose time span holds it."""
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"]
    )
    nodes = sorted(
        (e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")),
        key=lambda e: e["ts"],
    )
    if not runs:
        raise OpProfileError("the ONNX Runtime trace holds no model_run event")
    per_run: list[list[tuple[str, str, float]]] = [[] for _ in runs]
    r = 0
    for node in nodes:
        while r < len(runs) and node["ts"] > runs[r]["ts"] + runs[r]["dur"]:
            r += 1
        if r == len(runs):
            break
        if node["ts"] >= runs[r]["ts"]:
            name = node["name"].removesuffix("_kernel_time")
            per_run[r].append((name, node.get("args", {}).get("op_name", "?"), node["dur"] / 1e3))
    whole = [run["dur"] / 1e3 for run in runs]
    return per_run[skip_runs:], whole[skip_runs:]


def run_coverage(runs: list[list[tuple[str, str, float]]], whole: list[float]) -> list[float]:
    """Per run: the sum of its op times over its whole-model time."""
    return [sum(ms for _, _, ms in run) / w for run, w in zip(runs, whole, strict=True) if w > 0]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def decompose(profile: RuntimeProfile, baseline: RuntimeProfile) -> dict[str, Any]:
    """The extra time of ``profile`` over ``baseline`` (same arch, same runtime), by module kind."""
    mine = {k: ms for k, ms, _ in profile.by("kind")}
    theirs = {k: ms for k, ms, _ in baseline.by("kind")}
    kinds = list(dict.fromkeys([*mine, *theirs]))
    rows = [{"kind": k, "ms": mine.get(k, 0.0), "baseline_ms": theirs.get(k, 0.0)} for k in kinds]
    for row in rows:
        row["delta_ms"] = row["ms"] - row["baseline_ms"]
    rows.sort(key=lambda row: -abs(row["delta_ms"]))
    total = profile.op_sum_ms - baseline.op_sum_ms
    whole = profile.whole_ms - baseline.whole_ms
    plain = (
        profile.plain_ms - baseline.plain_ms if profile.plain_ms is not None and baseline.plain_ms is not None else None
    )
    return {
        "model": profile.model,
        "baseline": baseline.model,
        "runtime": profile.runtime,
        "delta_op_sum_ms": total,
        "delta_whole_ms": whole,
        "delta_plain_ms": plain,
        "kinds": rows,
    }
