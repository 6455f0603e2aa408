"""The per-op table of TFLite's ``benchmark_model --enable_op_profiling=true`` (no torch here).

After the timings, the tool prints "Operator-wise Profiling Info for Regular Benchmark Runs:" and a "Run Order"
table: one row per executed node with its type, first and average ms (per call), share, calls per run, and name.
Ops TFLite ran itself are named ``[output tensor names]:node index``; ops inside the XNNPACK delegate appear
either as one opaque ``TfLiteXNNPackDelegate`` row or, when the delegate profiles itself, as
``Delegate/<XNNPACK operator>:<index>`` rows whose index counts the delegate's own operators (not the TFLite
graph's nodes). Two layouts are seen: with a ``[start]`` column (older tools) and without it.
"""

from __future__ import annotations

import re
from typing import Any

HEADER = "Operator-wise Profiling Info for Regular Benchmark Runs"
_PREFIX = re.compile(r"^(?:INFO:\s*|[IWE]\s+tflite\s*:\s*|.*?\btflite\s*:\s*)")
_COLUMN = re.compile(r"\[([^\]]+)\]")
_SPLIT = re.compile(r"\s*\t\s*|\s{2,}")
DELEGATE_NODE = re.compile(r"(?i)delegate")  # TfLiteXNNPackDelegate, TfLiteNnapiDelegate, ...


def parse_op_profiling(text: str) -> list[dict[str, Any]]:
    """The rows of the run-order table after :data:`HEADER`; ``[]`` when the output has no op profile."""
    lines = [_PREFIX.sub("", raw.rstrip()) for raw in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if HEADER in line), None)
    if start is None:
        return []
    rows: list[dict[str, Any]] = []
    columns: list[str] | None = None
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if columns is None:
            if stripped.startswith("[node type]"):
                columns = [c.lower() for c in _COLUMN.findall(stripped)]
            continue
        if not stripped or stripped.startswith("="):
            break  # the table ends at a blank line or the next "=== Top by Computation Time ===" header
        fields = _SPLIT.split(stripped)
        if len(fields) != len(columns):
            continue
        cell = dict(zip(columns, fields, strict=True))
        calls = int(float(cell.get("times called", "1")))
        rows.append(
            {
                "node_type": cell["node type"],
                "first_ms": float(cell["first"]),
                "avg_ms": float(cell["avg ms"]),
                "percent": float(cell["%"].rstrip("%")),
                "times_called": calls,
                "ms_per_run": float(cell["avg ms"]) * calls,  # "avg ms" is per call; "%" counts every call
                "name": cell["name"],
                "delegated": cell["name"].startswith("Delegate/") or bool(DELEGATE_NODE.search(cell["node type"])),
            }
        )
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals by node type and the delegation the table shows: what a record keeps of an op profile."""
    by_type: dict[str, float] = {}
    for row in rows:
        by_type[row["node_type"]] = by_type.get(row["node_type"], 0.0) + row["ms_per_run"]
    delegated = [r for r in rows if r["delegated"]]
    opaque = [r for r in rows if DELEGATE_NODE.search(r["node_type"])]
    notes = []
    if opaque:
        notes.append(
            f"{len(opaque)} delegate node(s) ({', '.join(sorted({r['node_type'] for r in opaque}))}) timed as one "
            "opaque event each: the ops inside are not broken down (the delegate did not profile itself)"
        )
    outside = [r for r in rows if not r["delegated"]]
    if delegated and outside:
        notes.append(f"{len(outside)} op(s) ran outside the delegate: " + ", ".join(r["name"] for r in outside[:8]))
    return {
        "ops": rows,
        "sum_ms": sum(r["ms_per_run"] for r in rows),
        "by_node_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        "delegated_ms": sum(r["ms_per_run"] for r in delegated),
        "notes": notes,
    }


def op_table_lines(summary: dict[str, Any], limit: int = 12) -> list[str]:
    """A short terminal table: time by node type, then the notes."""
    total = summary["sum_ms"] or 1.0
    width = max([len("node type")] + [len(t) for t in summary["by_node_type"]])
    lines = [f"op profile (benchmark_model): {len(summary['ops'])} rows, {summary['sum_ms']:.3f} ms per run"]
    lines.append(f"  {'node type':<{width}}  {'ms':>8}  {'%':>5}")
    for node_type, ms in list(summary["by_node_type"].items())[:limit]:
        lines.append(f"  {node_type:<{width}}  {ms:8.3f}  {100 * ms / total:5.1f}")
    return lines + [f"  note: {note}" for note in summary["notes"]]
