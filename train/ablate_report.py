"""The report of a ``deepsquare ablate`` sweep: differences paired by seed, ablation.md / .csv / .png."""

from __future__ import annotations

import argparse
import csv
import io
import statistics
from pathlib import Path
from typing import Any

from deepsquare.runtime.files import write_atomically, write_text_atomically

from .stats import mean_interval


def summarize(results: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Per variant: mean top-1 (the reported split: test when the data has one) and its interval, the mean val
    top-1, and the paired difference to the baseline of the same arch, seed by seed."""
    by_name: dict[str, dict[int, float]] = {}
    val: dict[str, list[float]] = {}
    for r in results:
        by_name.setdefault(r["name"], {})[r["seed"]] = r["top1"]
        if r.get("val_top1") is not None:
            val.setdefault(r["name"], []).append(r["val_top1"])
    rows = []
    for name, seeds in by_name.items():
        arch = name.split("/")[0]
        base = by_name.get(f"{arch}/{baseline}", {})
        mean, low, high = mean_interval(list(seeds.values()))
        row = {"name": name, "seeds": len(seeds), "top1": mean, "ci95": [low, high]}
        if name in val:
            row["val_top1"] = statistics.fmean(val[name])
        paired = [seeds[s] - base[s] for s in sorted(seeds) if s in base]
        if name != f"{arch}/{baseline}" and paired:
            diff, d_low, d_high = mean_interval(paired)
            measured = len(paired) > 1 and not d_low <= 0 <= d_high
            row.update(diff=diff, diff_ci95=[d_low, d_high], pairs=len(paired), measured=measured)
        rows.append(row)
    return rows


def split_note(results: list[dict[str, Any]]) -> tuple[str, str]:
    """The split the tables report (its column title) and the sentence saying what it is."""
    if all(r.get("split") == "test" for r in results):
        return "test", (
            "Top-1 is the last epoch's on the held-out test split, which nothing selects on (no "
            "best-epoch picking; evaluated once, at the end of each run); val top-1, the split to tune "
            "on, is shown beside it."
        )
    return "val", (
        "Top-1 is the last epoch's on the **val split: the data has no held-out test split** (an image "
        "folder without `test/`), so these figures are on the split that selection uses; add a `test/` "
        "folder for a held-out figure."
    )


def markdown(
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    wall_s: float | None,
    results: list[dict[str, Any]] | None = None,
) -> str:
    """The report's table. ``wall_s`` None leaves the wall time out: ablation.md depends only on the runs'
    results, so a sweep resumed, or trained on a Ray cluster, writes the same file as one trained at once here."""
    split, note = split_note(results or [])
    wall = "" if wall_s is None else f" {wall_s:.0f} s wall."
    vary = getattr(args, "vary", {}) or {}
    axes = "".join(f", {flag} {' / '.join(values)}" for flag, values in vary.items())
    dropout = "" if "dropout" in vary else f", dropout {args.dropout} for all"
    lines = [
        f"# Ablation: {args.data}, {args.epochs} epochs, {args.seeds} seeds{dropout}{axes}",
        "",
        f"{note}{wall} Difference: paired by seed to `{args.baseline}` of the same arch"
        f"{' (trained with the first value of each axis)' if vary else ''}, "
        f"on {split}, 95% interval (Student's t); *not measured* when it contains 0.",
        "",
        f"| model | seeds | {split} top-1 % (95% CI) | vs baseline on {split}, points (95% CI) | val top-1 % |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f"{r['top1']:.2f} ({r['ci95'][0]:.2f}-{r['ci95'][1]:.2f})"
        if "diff" in r:
            verdict = "" if r["measured"] else ", not measured"
            diff = f"{r['diff']:+.2f} ({r['diff_ci95'][0]:+.2f} to {r['diff_ci95'][1]:+.2f}){verdict}"
        else:
            diff = "baseline" if r["name"].endswith(f"/{args.baseline}") else "-"
        val = f"{r['val_top1']:.2f}" if "val_top1" in r else "-"
        lines.append(f"| {r['name']} | {r['seeds']} | {ci} | {diff} | {val} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path, results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if "diff" in r]
    fig, axis = plt.subplots(figsize=(7, 0.5 * len(shown) + 1.5))
    for i, r in enumerate(shown):
        low, high = r["diff_ci95"]
        axis.errorbar(
            r["diff"],
            i,
            xerr=[[r["diff"] - low], [high - r["diff"]]],
            fmt="o",
            capsize=3,
            color="tab:blue" if r["measured"] else "tab:gray",
        )
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(shown)), [r["name"] for r in shown])
    axis.set_xlabel(f"{split_note(results)[0]} top-1 difference to the baseline, points (95% CI, paired by seed)")
    fig.tight_layout()
    write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def write_outputs(results: list[dict[str, Any]], rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    buffer = io.StringIO()
    # top1/top5 on ``split`` (test, or val when the data has none); val_top1/val_top5 always on val
    fields = [
        "name",
        "arch",
        "variant",
        "dsop",
        "iterations",
        "seed",
        "split",
        "top1",
        "top5",
        "val_top1",
        "val_top5",
        "train_s",
    ]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(results, key=lambda r: (r["name"], r["seed"])))
    write_text_atomically(args.out / "ablation.csv", buffer.getvalue())
    write_text_atomically(args.out / "ablation.md", markdown(rows, args, None, results))
    if any("diff" in r for r in rows):
        plot(rows, args.out / "ablation.png", results)
