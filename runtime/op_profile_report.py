"""The outputs of ``deepsquare profile``: the terminal tables, ``profile.json``, ``profile.md`` and a horizontal
bar chart per runtime (no torch here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import write_atomically, write_text_atomically
from .op_profile import RuntimeProfile

AGREEMENT = 0.10  # the per-op sum should be within 10% of the whole-model time; the table says when it is not
TOP_KINDS = 3  # kinds named per unit row


def _unit_kinds(profile: RuntimeProfile, unit: str) -> str:
    kinds: dict[str, float] = {}
    for op in profile.ops:
        if op.unit == unit:
            kinds[op.kind] = kinds.get(op.kind, 0.0) + op.ms
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:TOP_KINDS]
    return ", ".join(f"{k} {ms:.3f}" for k, ms in top) + (" ..." if len(kinds) > TOP_KINDS else "")


def agreement_line(profile: RuntimeProfile) -> str:
    """How the per-op sum compares with the whole-model time of the same runs, and why when it is off by > 10%."""
    gap = profile.coverage - 1
    fastest = f", fastest {profile.whole_min_ms:.3f} ms" if profile.whole_min_ms is not None else ""
    line = (
        f"within each run the ops add up to {100 * profile.coverage:.1f}% of that run's time (median over "
        f"{profile.runs} runs); per-op medians sum to {profile.op_sum_ms:.3f} ms; whole-model run time "
        f"({profile.runtime}'s own) median {profile.whole_ms:.3f} ms{fastest}"
    )
    if abs(gap) > AGREEMENT:
        line += f"; NOT within {100 * AGREEMENT:.0f}%: {100 * abs(gap):.1f}% of the time is " + (
            "outside the ops (executor overhead between kernels, input/output copies, other work preempting "
            "the process between kernels; it weighs more on small models and inputs)"
            if gap < 0
            else "counted twice (ops that overlap in time: more than one thread)"
        )
    if profile.plain_ms is not None:
        overhead = profile.whole_ms / profile.plain_ms - 1 if profile.plain_ms else 0.0
        line += f"; without the profiler {profile.plain_ms:.3f} ms a run (the profiler adds {100 * overhead:+.1f}%)"
    return line


def profile_lines(profile: RuntimeProfile) -> list[str]:
    """The terminal table of one profile: one row per unit, then one per kind."""
    total = profile.op_sum_ms or 1.0
    head = f"{profile.runtime}, {profile.threads} thread(s), {profile.model} ({Path(profile.file).name}), "
    lines = [head + f"{profile.runs} profiled runs, ms per run", ""]
    units = profile.by("unit")
    width = max([len("unit")] + [len(u) for u, _, _ in units])
    lines.append(f"  {'unit':<{width}}  {'ms':>7}  {'%':>5}  {'ops':>3}  kinds (ms)")
    for unit, ms, count in units:
        lines.append(f"  {unit:<{width}}  {ms:7.3f}  {100 * ms / total:5.1f}  {count:3d}  {_unit_kinds(profile, unit)}")
    kinds = sorted(profile.by("kind"), key=lambda row: -row[1])
    width = max([len("kind")] + [len(k) for k, _, _ in kinds])
    lines += ["", f"  {'kind':<{width}}  {'ms':>7}  {'%':>5}  {'ops':>3}"]
    lines += [f"  {k:<{width}}  {ms:7.3f}  {100 * ms / total:5.1f}  {n:3d}" for k, ms, n in kinds]
    lines += ["", "  " + agreement_line(profile)]
    lines += [f"  note: {note}" for note in profile.notes]
    return lines


def decomposition_lines(delta: dict[str, Any], limit: int = 8) -> list[str]:
    """``Square-Excitation squeeze +0.150 ms of +0.210 ms``: the difference to the baseline by module kind."""
    total = delta["delta_op_sum_ms"]
    lines = [
        f"{delta['model']} against {delta['baseline']} in {delta['runtime']}: {total:+.3f} ms per run in the ops "
        f"(whole-model {delta['delta_whole_ms']:+.3f} ms"
        + (f", without the profiler {delta['delta_plain_ms']:+.3f} ms)" if delta["delta_plain_ms"] is not None else ")")
    ]
    for row in delta["kinds"][:limit]:
        if abs(row["delta_ms"]) < 0.0005:
            continue
        lines.append(
            f"  {row['kind']} {row['delta_ms']:+.3f} ms of {total:+.3f} ms "
            f"({row['baseline_ms']:.3f} -> {row['ms']:.3f} ms)"
        )
    return lines


def markdown(result: dict[str, Any]) -> str:
    """``profile.md``: the per-unit and per-kind tables of each profile, and the decompositions."""
    out = [f"# deepsquare profile\n\nMachine: {result['machine']}\n"]
    for profile in result["profiles"]:
        p = RuntimeProfile(**{k: v for k, v in profile.items() if k in RuntimeProfile.__dataclass_fields__})
        p.ops = [_op(o) for o in profile["ops"]]
        total = p.op_sum_ms or 1.0
        out.append(f"## {p.model}: {p.runtime}, {p.threads} thread(s), {p.runs} runs\n")
        out += ["| unit | ms | % | ops | kinds (ms) |", "|---|---:|---:|---:|---|"]
        out += [
            f"| `{u}` | {ms:.3f} | {100 * ms / total:.1f} | {n} | {_unit_kinds(p, u)} |" for u, ms, n in p.by("unit")
        ]
        out += ["", "| kind | ms | % | ops |", "|---|---:|---:|---:|"]
        kinds = sorted(p.by("kind"), key=lambda row: -row[1])
        out += [f"| {k} | {ms:.3f} | {100 * ms / total:.1f} | {n} |" for k, ms, n in kinds]
        out += ["", agreement_line(p) + ".", *[f"- {note}" for note in p.notes], ""]
    for delta in result.get("against", []):
        out += ["## Difference by module kind\n", *decomposition_lines(delta, limit=100), ""]
    out += [f"- {note}" for note in result.get("notes", [])]
    return "\n".join(out) + "\n"


def _op(data: dict[str, Any]):
    from .op_profile import OpTime

    return OpTime(**{k: v for k, v in data.items() if k in OpTime.__dataclass_fields__})


def plot(profiles: list[RuntimeProfile], path: Path) -> bool:
    """A horizontal bar chart of the ms per unit, one bar per model, for one runtime; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    units = list(dict.fromkeys(u for p in profiles for u, _, _ in p.by("unit")))
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(units) * max(1, len(profiles)) + 1.5))
    height = 0.8 / len(profiles)
    for i, p in enumerate(profiles):
        ms = dict((u, v) for u, v, _ in p.by("unit"))
        ax.barh([k + i * height for k in range(len(units))], [ms.get(u, 0.0) for u in units], height, label=p.model)
    ax.set_yticks([k + height * (len(profiles) - 1) / 2 for k in range(len(units))], units, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms per run (per-op profile)")
    ax.set_title(f"{profiles[0].runtime}, {profiles[0].threads} thread(s)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
    return True


def write_outputs(result: dict[str, Any], profiles: list[RuntimeProfile], out: Path) -> list[Path]:
    """``profile.json``, ``profile.md`` and ``profile-<runtime>.png`` in ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [
        write_text_atomically(out / "profile.json", json.dumps(result, indent=1) + "\n"),
        write_text_atomically(out / "profile.md", markdown(result)),
    ]
    for runtime in dict.fromkeys(p.runtime for p in profiles):
        chart = out / f"profile-{runtime}.png"
        if plot([p for p in profiles if p.runtime == runtime], chart):
            written.append(chart)
    return written
