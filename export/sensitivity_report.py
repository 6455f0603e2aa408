"""``sensitivity.json`` and ``sensitivity.md``: a sensitivity sweep's record (``SweepResult.as_dict()`` of
``deepsquare.export.sensitivity``) as JSON, and as one table per format: the all-int8 file, each unit kind alone in
int8, the fallback steps, and the choice. Works on the plain record, so it needs no torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepsquare.runtime.files import write_text_atomically

JSON_NAME, MARKDOWN_NAME = "sensitivity.json", "sensitivity.md"


def figures(m: dict[str, Any]) -> tuple[str, str]:
    """(agreement, top-1 difference with its interval) of one measurement, or ("failed", why)."""
    if m.get("error") is not None or m.get("agreement") is None:
        return "failed", str(m.get("error") or "?").replace("|", "/")
    low, high = m["ci95"]
    return f"{m['agreement']:.1f}%", f"{m['diff']:+.1f} ({low:+.1f} to {high:+.1f})"


def row(m: dict[str, Any], modules: str, goal: bool) -> str:
    agreement, diff = figures(m)
    float_ops = "" if m.get("float_ops") is None else f", {m['float_ops']} float ops"
    mark = "yes" if goal else ""
    return f"| {m['label']} | {modules}{float_ops} | {agreement} | {diff} | {mark} |"


def meets(m: dict[str, Any], goal: dict[str, float]) -> bool:
    if m.get("error") is not None or m.get("agreement") is None:
        return False
    return m["agreement"] >= goal["agreement"] and abs(m["diff"]) <= goal["top1"]


def format_table(name: str, sweep: dict[str, Any], goal: dict[str, float]) -> list[str]:
    units: dict[str, list[str]] = sweep["units"]
    lines = [
        f"## {name}",
        "",
        "| int8 file | modules kept float | agreement | Δ top-1, points (95% CI) | goal |",
        "|---|---|---|---|---|",
        row(sweep["all_int8"], "none", meets(sweep["all_int8"], goal)),
    ]
    for m in sweep["alone"]:
        kind = m["label"].removesuffix(" alone int8")
        lines.append(row(m, f"{m['modules']}: all but {kind} ({len(units.get(kind, []))} int8)", meets(m, goal)))
    for m in sweep["fallback"]:
        lines.append(row(m, str(m["modules"]), meets(m, goal)))
    kept = sweep["keep_float"]
    verdict = "reaches the goal" if sweep["reached"] else "could not reach the goal; the closest file is chosen"
    paths = sweep.get("keep_float_paths", [])
    shown = ", ".join(f"`{p}`" for p in paths[:8]) + (f", ... ({len(paths)} in all)" if len(paths) > 8 else "")
    choice = f"keep float {', '.join(kept)}: {shown}" if kept else "everything int8"
    lines += ["", f"Choice: {choice} ({verdict}; {sweep['seconds']:.0f} s).", ""]
    return lines


def markdown(record: dict[str, Any]) -> str:
    """The sweep as Markdown: a header saying what and where, one table per format."""
    goal = record.get("goal", {"agreement": 99.0, "top1": 1.0})
    load = ", ".join("?" if v is None else f"{v:.2f}" for v in record.get("load", []))
    libraries = ", ".join(f"{name} {version}" for name, version in record.get("versions", {}).items())
    lines = [
        f"# int8 sensitivity: {record['arch']} {record['variant']}",
        "",
        f"Checkpoint `{record['checkpoint']}`; evaluated on {record['data']}, calibrated on "
        f"{record['calibration']} training images; compared image by image with the PyTorch deploy model. "
        f"Goal: top-1 agreement >= {goal['agreement']:g}% and held-out top-1 within {goal['top1']:g} point.",
        "",
        f"CPU: {record['cpu']}; load average (1 min) at start and end: {load}; {record['seconds']:.0f} s. {libraries}",
        "",
        "Each unit kind *alone int8* keeps every other kind float. Δ top-1: the file's held-out top-1 minus "
        "PyTorch's, paired over the images.",
        "",
    ]
    for name, sweep in record["formats"].items():
        lines += format_table(name, sweep, goal)
    for name, why in record.get("skipped", {}).items():
        lines += [f"## {name}", "", f"Skipped: {why}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(record: dict[str, Any], folder: Path) -> list[Path]:
    """``sensitivity.json`` and ``sensitivity.md`` in ``folder`` (created), each written whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    text = markdown(record)  # before anything is written: a bad record writes nothing
    json_path = write_text_atomically(folder / JSON_NAME, json.dumps(record, indent=2) + "\n")
    return [json_path, write_text_atomically(folder / MARKDOWN_NAME, text)]


def chosen_of(sweep: dict[str, Any]) -> dict[str, Any]:
    """The measurement of the file a format's choice makes (the all-int8 one when nothing is kept float)."""
    files = [sweep["all_int8"], *sweep["fallback"]]
    return next((m for m in files if list(m["keep_float"]) == list(sweep["keep_float"])), sweep["all_int8"])


def summary(records: list[dict[str, Any]]) -> str:
    """One row per checkpoint x format of several sweeps: agreement and Δ top-1 all int8, and with the fallback's
    choice; then each unit kind's agreement alone in int8 (the docs' results table, docs/results/int8.md)."""
    head = "| model | variant | format | PyTorch top-1 | all int8: agreement | Δ top-1 (95% CI) | kept float "
    rows = [head + "| agreement | Δ top-1 (95% CI) | goal | sweep |", "|---" * 11 + "|"]
    kinds = ["| model | variant | format | agreement, each unit kind alone in int8 |", "|---|---|---|---|"]
    for r in records:
        name = f"| {r['arch']} | `{r['variant']}` |"
        for fmt, sweep in r["formats"].items():
            reference = sweep["all_int8"].get("reference_top1")
            chosen = figures(chosen_of(sweep))
            kept = ", ".join(sweep["keep_float"]) or "nothing"
            goal = "yes" if sweep["reached"] else "**no**"
            top1 = "?" if reference is None else f"{reference:.1f}%"
            all_int8, seconds = " | ".join(figures(sweep["all_int8"])), f"{sweep['seconds']:.0f} s"
            rows.append(f"{name} {fmt} | {top1} | {all_int8} | {kept} | {' | '.join(chosen)} | {goal} | {seconds} |")
            alone = [f"{m['label'].removesuffix(' alone int8')} {figures(m)[0]}" for m in sweep["alone"]]
            kinds.append(f"{name} {fmt} | {', '.join(alone)} |")
        for fmt, why in r.get("skipped", {}).items():
            rows.append(f"{name} {fmt} | skipped: {why} |" + " |" * 7)
    return "\n".join([*rows, "", *kinds]) + "\n"


if __name__ == "__main__":  # python -m deepsquare.export.sensitivity_report runs/*/sensitivity/sensitivity.json
    import sys

    print(summary([json.loads(Path(p).read_text()) for p in sys.argv[1:]]), end="")
