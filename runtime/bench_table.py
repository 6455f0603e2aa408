"""The per-file table of ``deepsquare bench`` (one row per file, the PyTorch model first), the header that names
the machine, the busy-machine line and the Pareto plot (held-out accuracy vs steady latency). No torch here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .files import write_atomically
from .machine import busy_reasons, busy_warning, cpu_line, steal_pct


def machine_header(result: dict[str, Any]) -> str:
    """``Measured on AMD EPYC, 2 cores, x86_64 (AVX2, ..., AVX-512 VNNI); onnxruntime 1.31.1, ...``."""
    info = result.get("cpu")
    if not info:
        return f"Measured on {result['machine']}."
    versions = result.get("versions", {})
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "deepsquare")
    return f"Measured on {cpu_line(info)}; {libs}; deepsquare {versions.get('deepsquare', '?')}."


def busy_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Load and steal at the start and end of the timing, the widest ratio interval, and the warning (or None)."""
    widths = [
        (r["ci95"][1] / r["ci95"][0], bool(r.get("cached_at")))
        for r in result["ratios"]
        if r["name"] != r["baseline"] and r["ci95"][0] > 0
    ]
    widest = max((w for w, cached in widths if not cached), default=None)  # a cached row says nothing of now
    load = result.get("load", {"start": {}, "end": {}})
    reasons = busy_reasons(load["start"], load["end"], widest, (result.get("cpu") or {}).get("cores"))
    if result["ratios"] and all(r.get("cached_at") for r in result["ratios"]):
        reasons = []  # nothing was timed now: today's load says nothing of the cached figures
    return {
        "load1": [load["start"].get("load1"), load["end"].get("load1")],
        "steal_pct": steal_pct(load["start"], load["end"]),
        "widest_interval": widest,
        "reasons": reasons,
        "warning": busy_warning(reasons),
    }


def _ms(value: float | None, interval: list[float] | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.3g}" if value < 100 else f"{value:.0f}"
    return text + (f" ({interval[0]:.3g}-{interval[1]:.3g})" if interval else "")


def _diff(vs: dict[str, Any] | None) -> str:
    if not vs:
        return "-"
    return f"{vs['diff']:+.1f} ({vs['ci95'][0]:+.1f} to {vs['ci95'][1]:+.1f}){'' if vs['measured'] else ' ns'}"


def _ratio(row: dict[str, Any]) -> str:
    if row.get("ratio") is None:
        return "-"
    if row["name"] == row.get("baseline") and row["ratio"] == 1.0:
        return "x1 (baseline)"
    low, high = row["ci95"]
    return f"x{row['ratio']:.3f} ({low:.3f}-{high:.3f}){' ns' if low <= 1 <= high else ''}"


def _when(row: dict[str, Any]) -> str:
    cached = {part: t for part, t in row.get("cached", {}).items() if t}
    if not cached:
        return "now"
    parts = "all" if len(cached) == len(row["cached"]) else ", ".join(sorted(cached))
    return f"cache ({parts}), " + min(cached.values()).replace("T", " ").replace("Z", " UTC")


def files_table(result: dict[str, Any]) -> list[str]:
    """The per-file table's lines (none when no checkpoint or bundle was benched)."""
    rows = result.get("files") or []
    if not rows:
        return []
    data = next((r["data"] for r in rows if r.get("data")), "no data")
    lines = [
        f"Per file ({data}; {rows[0]['threads']} thread(s)). top-1 vs PyTorch: paired per image, points with a "
        "95% interval, ns when it contains 0; agree: images with PyTorch's top-1 class. load / first: median over "
        "fresh processes (runtime imported first). "
        "p50 / p90: steady latency with 95% intervals (order statistics). peak RSS: the process that loaded and "
        "ran the file. x gap: paired ratio to the baseline.",
        "",
        "| model | format | precision | input | KB | top-1 % | vs PyTorch, pts (95% CI) | agree % | load ms "
        "| first ms | p50 ms (95% CI) | p90 ms (95% CI) | peak RSS MB | x gap (95% CI) | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        error = r.get("accuracy_error") or r.get("cold_error")
        cells = [
            r["name"],
            r["format"],
            r["precision"],
            r.get("input_dtype", "float32"),
            f"{r['size_kb']:,}",
            f"{r['top1']:.1f}" if r.get("top1") is not None else "-",
            "reference" if r["format"] == "pytorch" else _diff(r.get("vs_pytorch")),
            f"{r['agreement']:.1f}" if r.get("agreement") is not None else "-",
            _ms(r.get("load_ms")),
            _ms(r.get("first_ms")),
            _ms(r.get("p50_ms"), r.get("p50_ci95")),
            _ms(r.get("p90_ms"), r.get("p90_ci95")),
            f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") is not None else "-",
            _ratio(r),
            _when(r) + (f"; error: {error}" if error else ""),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return [*lines, ""]


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower latency and at least the accuracy), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(result: dict[str, Any], path: Path) -> bool:
    """Held-out top-1 against steady p50, one point per file, the Pareto front joined; False when there is
    nothing to plot (no file has both) or matplotlib is missing."""
    rows = [r for r in result.get("files") or [] if r.get("top1") is not None and r.get("p50_ms") is not None]
    if not rows:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    points = [(r["p50_ms"], r["top1"]) for r in rows]
    fig, axis = plt.subplots(figsize=(7, 4.8))
    for r, (x, y) in zip(rows, points, strict=True):
        axis.scatter([x], [y])
        axis.annotate(
            f"{r['name']} {r['format']} {r['precision']}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
        )
    front = pareto_front(points)
    axis.plot([points[i][0] for i in front], [points[i][1] for i in front], "k--", linewidth=0.8, label="Pareto front")
    latencies = [x for x, _ in points]
    if max(latencies) > 10 * min(latencies):  # several sizes of model: a log axis keeps the small ones apart
        axis.set_xscale("log")
    axis.set_xlabel("steady p50 latency, ms (batch 1)")
    axis.set_ylabel(f"held-out top-1, % ({rows[0].get('data', '')})")
    where = cpu_line(result["cpu"]) if result.get("cpu") else result.get("machine", "")
    axis.set_title(f"accuracy vs latency, {rows[0]['threads']} thread(s)\n{where}", fontsize=8)
    axis.legend(fontsize=7)
    fig.tight_layout()
    write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return True
