"""``deepsquare-ablate``: every variant x seed with one recipe, and what the differences are worth.

    deepsquare-ablate --arch vanilla_cnn --variants gap,sp,ss,sp+ss,gem --data digits --seeds 5 --epochs 30 \\
                      --out runs/ablate

Every run gets the same recipe, budget and regularisation (one ``--dropout`` for all variants, 0 unless
given), and differs only in its variant, its DSoP setting and its seed. The seed fixes the data order,
the augmentation and the initialisation of the shared layers, so runs with one seed are paired: the
difference to the baseline (``--baseline``, default gap) is taken seed by seed, and its 95% interval
(Student's t) says whether a difference was measured at all (an interval that contains 0: not measured).

Runs go in parallel, one torch thread each (``--jobs``, default the CPU count). Each run writes
``OUT/runs/<name>/seed<k>/result.json`` when it ends; a killed sweep started again skips the runs that
have one. The accuracy reported, and the differences, are the last epoch's top-1 on the data set's held-out
test split, which nothing selects on (no best-epoch picking; the trainer evaluates it once, at the end); the
val top-1 is kept beside it, the split to tune recipes on. A data set without a test split (an image folder
with no ``test/``) is reported on val, and the tables say so. Writes ``ablation.csv`` (one row per run),
``ablation.md`` and ``ablation.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .files import write_text_atomically
from .stats import mean_interval


@dataclass(frozen=True)
class Run:
    arch: str
    variant: str
    dsop: str  # "none" or "+"-joined stages
    iterations: int
    seed: int

    @property
    def name(self) -> str:
        dsop = "" if self.dsop == "none" else f"+dsop({self.dsop.replace('+', ',')},T={self.iterations})"
        return f"{self.arch}/{self.variant}{dsop}"

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.name.replace("/", "_").replace(",", "-").replace("=", "") / f"seed{self.seed}"


def split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def plan(args: argparse.Namespace) -> list[Run]:
    """The grid, every name checked before any training."""
    from .config import TrainConfig

    runs = []
    for arch in split(args.arch):
        for variant in split(args.variants):
            for dsop in split(args.dsop):
                for iterations in args.dsop_iterations if dsop != "none" else [args.dsop_iterations[0]]:
                    for seed in range(args.seeds):
                        stages = () if dsop == "none" else tuple(dsop.split("+"))
                        TrainConfig(arch=arch, variant=variant, dsop_stages=stages, dsop_iterations=iterations,
                                    epochs=args.epochs, seed=seed).validate()  # fmt: skip
                        runs.append(Run(arch, variant, dsop, iterations, seed))
    return runs


def command(run: Run, args: argparse.Namespace, folder: Path) -> list[str]:
    cmd = [sys.executable, "-m", "deepsquare.train", "--quiet", "--arch", run.arch, "--variant", run.variant,
           "--data", args.data, "--epochs", str(args.epochs), "--seed", str(run.seed), "--out", str(folder),
           "--dropout", str(args.dropout), "--batch-size", str(args.batch_size),
           "--input-size", str(args.input_size)]  # fmt: skip
    if args.lr is not None:
        cmd += ["--lr", str(args.lr)]
    if run.dsop != "none":
        cmd += ["--dsop", run.dsop.replace("+", ","), "--dsop-iterations", str(run.iterations)]
    return cmd


def execute(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Train one run in its own process (one torch thread) unless its result exists; return the result."""
    folder = run.folder(args.out)
    done = folder / "result.json"
    if done.is_file():
        record = json.loads(done.read_text())
        if "split" in record:  # a result from before test splits (val only) is trained again
            return record
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    result = subprocess.run(command(run, args, folder), capture_output=True, text=True, env=env)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"run {run.name} seed {run.seed} failed: {last}")
    with open(folder / "metrics.csv") as f:
        final = list(csv.DictReader(f))[-1]
    split = "test" if final.get("test_top1") else "val"  # val only when the data has no test split
    record = {**asdict(run), "name": run.name, "split": split, "top1": float(final[f"{split}_top1"]),
              "top5": float(final[f"{split}_top5"]), "val_top1": float(final["val_top1"]),
              "val_top5": float(final["val_top5"]), "train_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    write_text_atomically(done, json.dumps(record, indent=2) + "\n")
    return record


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
        return "test", ("Top-1 is the last epoch's on the held-out test split, which nothing selects on (no "
                        "best-epoch picking; evaluated once, at the end of each run); val top-1, the split to tune "
                        "on, is shown beside it.")  # fmt: skip
    return "val", ("Top-1 is the last epoch's on the **val split: the data has no held-out test split** (an image "
                   "folder without `test/`), so these figures are on the split that selection uses; add a `test/` "
                   "folder for a held-out figure.")  # fmt: skip


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, wall_s: float,
             results: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    split, note = split_note(results or [])
    lines = [f"# Ablation: {args.data}, {args.epochs} epochs, {args.seeds} seeds, dropout {args.dropout} for all",
             "", f"{note} {wall_s:.0f} s wall. Difference: paired by seed to `{args.baseline}` of the same arch, "
             f"on {split}, 95% interval (Student's t); *not measured* when it contains 0.", "",
             f"| model | seeds | {split} top-1 % (95% CI) | vs baseline on {split}, points (95% CI) | val top-1 % |",
             "|---|---|---|---|---|"]  # fmt: skip
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
        axis.errorbar(r["diff"], i, xerr=[[r["diff"] - low], [high - r["diff"]]], fmt="o", capsize=3,
                      color="tab:blue" if r["measured"] else "tab:gray")  # fmt: skip
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(shown)), [r["name"] for r in shown])
    axis.set_xlabel(f"{split_note(results)[0]} top-1 difference to the baseline, points (95% CI, paired by seed)")
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial.png")
    fig.savefig(partial, dpi=110)
    plt.close(fig)
    partial.replace(path)


def write_outputs(results: list[dict[str, Any]], rows: list[dict[str, Any]], args: argparse.Namespace,
                  wall_s: float) -> None:  # fmt: skip
    buffer = io.StringIO()
    # top1/top5 on ``split`` (test, or val when the data has none); val_top1/val_top5 always on val
    fields = ["name", "arch", "variant", "dsop", "iterations", "seed", "split", "top1", "top5", "val_top1",
              "val_top5", "train_s"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(results, key=lambda r: (r["name"], r["seed"])))
    write_text_atomically(args.out / "ablation.csv", buffer.getvalue())
    write_text_atomically(args.out / "ablation.md", markdown(rows, args, wall_s, results))
    if any("diff" in r for r in rows):
        plot(rows, args.out / "ablation.png", results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="deepsquare-ablate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--arch", default="vanilla_cnn", help="comma-separated archs (default vanilla_cnn)")
    p.add_argument(
        "--variants", default="gap,sp,ss,sp+ss,gem", help="comma-separated variants (default gap,sp,ss,sp+ss,gem)"
    )
    p.add_argument("--baseline", default="gap", help="the variant differences are taken to (default gap)")
    p.add_argument("--data", default="digits", help="a deepsquare-train --data spec (default digits)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per variant (default 5; at least 2)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--lr", type=float, help="peak learning rate for every run (default: the trainer's)")
    p.add_argument("--dropout", type=float, default=0.0, help="the same dropout for every variant (default 0)")
    p.add_argument("--dsop", default="none", help="DSoP settings as a variant axis: none and/or '+'-joined stages")
    p.add_argument("--dsop-iterations", default="5", help="comma-separated iSQRT steps T for the DSoP runs (default 5)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once (default: the CPU count)")
    p.add_argument("--out", type=Path, default=Path("runs/ablate"))
    args = p.parse_args(argv)
    try:
        args.dsop_iterations = [int(v) for v in split(args.dsop_iterations)]
        if args.seeds < 2 or args.jobs < 1:
            raise ValueError(
                f"--seeds must be >= 2 (an interval needs two), --jobs >= 1; got {args.seeds}, {args.jobs}"
            )
        if args.baseline not in split(args.variants):
            raise ValueError(f"--baseline {args.baseline!r} is not among --variants")
        runs = plan(args)
        args.out.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        print(f"deepsquare-ablate: error: {exc}", file=sys.stderr)
        return 1
    from tqdm import tqdm

    started = time.perf_counter()
    results, failures = [], []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, tqdm(total=len(runs), desc="ablation", unit="run",
                                                                 file=sys.stderr) as bar:  # fmt: skip
        futures = {pool.submit(execute, run, args): run for run in runs}
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except RuntimeError as exc:
                failures.append(str(exc))
            bar.update()
    if not results:
        print(f"deepsquare-ablate: error: every run failed; first: {failures[0]}", file=sys.stderr)
        return 1
    rows = summarize(results, args.baseline)
    write_outputs(results, rows, args, time.perf_counter() - started)
    print(markdown(rows, args, time.perf_counter() - started, results))
    for failure in failures:
        print(f"deepsquare-ablate: {failure}", file=sys.stderr)
    print(f"report: {args.out / 'ablation.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
