"""The latency report: bench.json, bench.csv, bench.md and bench.png from one result (no torch here).

A result is what ``deepsquare.runtime.latency.time_models`` returns, plus
``records_elsewhere``: records measured on a phone, a Mac or in a browser (the same schema),
shown in a table of their own.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from .bench_table import files_table, machine_header, plot_pareto
from .files import write_atomically, write_text_atomically
from .records import BenchRecord


def load_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Records measured elsewhere (deepsquare profile --out, another bench.json), validated."""
    records = []
    for path in paths:
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
            rows = data["records"] if isinstance(data, dict) else data
            records += [BenchRecord.from_dict(r).to_dict() for r in rows]
        except OSError as exc:
            raise ValueError(f"cannot read --add-records {path}: {exc.strerror or exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"--add-records {path} is not a list of benchmark records ({exc})") from exc
    return records


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def _interval(values: list[float] | None) -> str:
    return f"{values[0]:.3f} ({values[1]:.3f}-{values[2]:.3f})" if values else "-"


def shows_precision(result: dict[str, Any]) -> bool:
    """The precision columns appear when something other than fp32 was timed (a plain run's table is unchanged)."""
    return any(r.get("precision", "fp32") != "fp32" for r in result["ratios"])


def markdown_table(result: dict[str, Any]) -> str:
    how = (
        f"{result['time_budget_s']:g} s of interleaved rounds per cell"
        if result.get("time_budget_s")
        else f"{result['runs']} interleaved rounds"
    )
    precision = shows_precision(result)
    warning = (result.get("busy") or {}).get("warning")
    cached = sum(1 for r in result["ratios"] if r.get("cached_at"))
    lines = [
        machine_header(result),
        *([f"**{warning[0].upper()}{warning[1:]}**"] if warning else []),
        *(
            [f"{cached} of {len(result['ratios'])} latency rows from the cache (measured when the row says)."]
            if cached
            else []
        ),
        "",
        *files_table(result),
        f"Batch 1, {how} ({result['warmup']} warm-up rounds each time sessions are created), {result['machine']}. "
        "Ratio: geometric mean of per-round ratios to the baseline, 95% interval; one containing 1 means no "
        "measured difference.",
        "",
        "| arch | px | model | runtime | threads | p50 ms | ratio (95% CI) | vs | params | MACs | elementwise "
        "| file KB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    head = len(lines) - 4  # the "Batch 1, ..." line
    if precision:
        lines[head] += (
            " The ratio is to the baseline at the same precision; vs fp32 is the paired ratio to the same "
            "model's fp32 file, timed in the same interleaved rounds."
        )
        lines[head + 2 :] = [
            "| arch | px | model | runtime | precision | threads | p50 ms | ratio (95% CI) | vs "
            "| vs fp32 (95% CI) | params | MACs | elementwise | file KB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in result["ratios"]:
        ratio = _interval([r["ratio"], *r["ci95"]]) + (" ns" if r["ci95"][0] <= 1 <= r["ci95"][1] else "")
        ratio = ratio if r["name"] != r["baseline"] else "1 (baseline)"
        cells = [
            r["arch"],
            r["input_size"],
            r["name"],
            r["runtime"],
            r["threads"],
            f"{r['p50_ms']:.3g}",
            ratio,
            r["baseline"],
            _count(r["params"]),
            _count(r["macs"]),
            _count(r["elementwise"]),
            f"{r['size_kb']:,}",
        ]
        if precision:
            cells[4:4] = [r.get("precision", "fp32")]
            cells[9:9] = [_interval(r.get("vs_fp32"))]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    for s in result.get("skipped", []):
        lines.append(
            f"\nNot timed: {s['arch']} {s['name']} ({s['precision']}) in {s['runtime']} at {s['threads']} "
            f"thread(s): the runtime refused it ({s['reason']})."
        )
    lines += elsewhere_table(result)
    return "\n".join(lines) + "\n"


def elsewhere_table(result: dict[str, Any]) -> list[str]:
    """The records measured on phones, Macs and browsers (``--add-records``), as a table of their own."""
    lines: list[str] = []
    if result.get("records_elsewhere"):
        lines += [
            "",
            "Measured elsewhere (--add-records: devices, browsers, Core ML):",
            "",
            "| model | variant | runtime | machine | threads | p50 ms | mean ms | min ms | init ms | setting |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in result["records_elsewhere"]:
            extra = r.get("extra", {})
            setting = ", ".join(
                f"{k}={extra[k]}" for k in ("compute_units", "use_gpu", "use_xnnpack", "backend") if k in extra
            )
            cells = [_ms(r.get(k)) for k in ("p50_ms", "mean_ms", "min_ms", "init_ms")]
            lines.append(
                f"| {r['model']} | {r['variant']} | {r['runtime']} | {r['machine']} | "
                f"{r['threads'] if r['threads'] is not None else '-'} | " + " | ".join(cells) + f" | {setting or '-'} |"
            )
    return lines


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None and not math.isnan(value) else "-"


CSV_FIELDS = [
    "arch",
    "input_size",
    "name",
    "variant",
    "runtime",
    "threads",
    "runs",
    "p50_ms",
    "ratio",
    "ci95_low",
    "ci95_high",
    "baseline",
    "params",
    "macs",
    "elementwise",
    "size_kb",
    "source",
    "precision",
    "vs_fp32",
    "vs_fp32_low",
    "vs_fp32_high",
    "cached_at",
]


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """bench.json, bench.csv, bench.md, bench.png; each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "bench.json", json.dumps(result, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in result["ratios"]:
        row = {k: v for k, v in r.items() if k not in ("ci95", "vs_fp32")}
        vs_fp32 = dict(zip(("vs_fp32", "vs_fp32_low", "vs_fp32_high"), r.get("vs_fp32") or ["", "", ""], strict=True))
        writer.writerow({"precision": "fp32", **row, "ci95_low": r["ci95"][0], "ci95_high": r["ci95"][1], **vs_fp32})
    write_text_atomically(out / "bench.csv", buffer.getvalue())
    write_text_atomically(out / "bench.md", markdown_table(result))
    plot(result, out / "bench.png")
    plot_pareto(result, out / "pareto.png")


def _series(row: dict[str, Any]) -> tuple[str, str, int, str]:
    return row["arch"], row["runtime"], row["threads"], row.get("precision", "fp32")


def plot(result: dict[str, Any], path: Path) -> bool:
    """Overhead vs baseline per runtime (with 95% intervals), and p50 latency vs params."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("deepsquare bench: matplotlib is not installed, no bench.png (pip install 'deepsquare[bench]')")
        return False
    rows = result["ratios"]
    series = list(dict.fromkeys(_series(r) for r in rows))
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.8 / max(1, len(series))
    for k, key in enumerate(series):
        picked = {r["name"]: r for r in rows if _series(r) == key}
        shown = [n for n in names if n in picked]
        label = " ".join([key[0], key[1], f"{key[2]}t", *([key[3]] if key[3] != "fp32" else [])])
        ratio = [picked[n]["ratio"] for n in shown]
        err = [
            [picked[n]["ratio"] - picked[n]["ci95"][0] for n in shown],
            [picked[n]["ci95"][1] - picked[n]["ratio"] for n in shown],
        ]
        left.bar([names.index(n) + k * width for n in shown], ratio, width, yerr=err, capsize=2, label=label)
        with_params = [n for n in shown if picked[n]["params"] is not None]
        right.scatter(
            [picked[n]["params"] for n in with_params], [picked[n]["p50_ms"] for n in with_params], label=label
        )
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(names))], names, rotation=30)
    left.set_ylabel("latency / baseline latency (95% CI)")
    left.set_title("overhead vs baseline (gap)")
    right.set_xscale("log")
    right.set_xlabel("parameters")
    right.set_ylabel("p50 latency (ms)")
    right.set_title("latency vs params")
    for axis in (left, right):
        axis.legend(fontsize=7)
    fig.tight_layout()
    write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return True
