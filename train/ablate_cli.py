"""``deepsquare ablate``: every variant x seed with one recipe, and what the differences are worth.

Examples:
  deepsquare ablate --arch vanilla_cnn --variant gap,sp,ss,sp+ss,gem --data digits --seeds 5 --epochs 30 \\
                      --out runs/ablate
  deepsquare ablate --arch shufflenetv2_x0_5 --variant gap,sp+ss+sex --data synthetic \\
                      --vary dropout=0,0.2 --vary ss-init=1,4 --out runs/recipe
  deepsquare ablate --variant gap,sp --seeds 5 --cluster auto --gpus-per-run 1 --out /shared/runs/ablate

``--vary FLAG=V1,V2,...`` (repeatable) makes a training flag another axis of the grid, like ``--dsop``: the
first value is the baseline's setting, and a run with another value is named ``arch/variant [flag=value]``,
so its difference is taken to the baseline trained with the first values, seed by seed. A flag that acts
on one module only (``ss-*`` on Square-Softmin, ``sex-alpha`` on Square-Excitation) is not varied for a
variant without that module: it would train the same model again.

Every run gets the same recipe, budget and regularisation (one ``--dropout`` for all variants, 0 unless
given), and differs only in its variant, its DSoP setting and its seed. The seed fixes the data order,
the augmentation and the initialisation of the shared layers, so runs with one seed are paired: the
difference to the baseline (``--baseline``, default gap) is taken seed by seed, and its 95% interval
(Student's t) says whether a difference was measured at all (an interval that contains 0: not measured).

Runs go in parallel, one torch thread each (``--jobs``, default one per CPU core). Each run writes
``OUT/runs/<name>/seed<k>/result.json`` when it ends; a killed sweep started again skips the runs that
have one. The accuracy reported, and the differences, are the last epoch's top-1 on the data set's held-out
test split, which nothing selects on (no best-epoch picking; the trainer evaluates it once, at the end); the
val top-1 is kept beside it, the split to tune recipes on. A data set without a test split (an image folder
with no ``test/``) is reported on val, and the tables say so. Writes ``ablation.csv`` (one row per run),
``ablation.md`` and ``ablation.png``. ``OUT/sweep.json`` holds the recipe; a sweep started again into the same
``--out`` with another recipe (epochs, data, lr, ...) is refused, so no table mixes two recipes. Variants,
archs, seeds and axis values may be added to a finished sweep: only the new runs train.

``ablation.md`` depends on the runs' results alone (the wall time is printed, not written): a sweep resumed, or
trained on a cluster, writes the same file.

``--cluster ADDRESS`` trains each run as a Ray task instead (``pip install 'deepsquare[cluster]'``): ``auto``
(the cluster this node is part of), ``HOST:PORT`` (its head), ``ray://HOST:PORT`` (Ray Client), or ``local`` (a
Ray head on 127.0.0.1 for this sweep).
Each run gets ``--cpus-per-run`` CPUs (its torch threads) and ``--gpus-per-run`` GPUs; ``--out`` must be a
folder every node sees. Resume, recipe check and report are the same; a run whose worker died is retried (at
most ``--retries`` times, each retry reported); one line per finished run says its place in the grid and the
time left. See the guide "Running at scale".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from deepsquare.runtime.options import UsageError, add_jobs, add_out, add_verbosity, jobs_or_cores

from .ablate import VARY_FLAGS, check_recipe, execute, parse_vary, plan, split
from .ablate_report import markdown, summarize, write_outputs
from .cluster import add_cluster_arguments, check_cluster


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="vanilla_cnn", help="comma-separated archs")
    p.add_argument("--variant", dest="variants", default="gap,sp,ss,sp+ss,gem", help="comma-separated variants")
    p.add_argument("--baseline", default="gap", help="the variant differences are taken to")
    p.add_argument("--data", default="digits", help="a `deepsquare train --data` spec")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per variant (at least 2)")
    p.add_argument("--epochs", type=int, default=30, help="epochs per run")
    p.add_argument("--batch-size", type=int, default=64, help="per run")
    p.add_argument("--input-size", type=int, default=32, help="square input side")
    p.add_argument("--lr", type=float, help="peak learning rate for every run (default: the trainer's)")
    p.add_argument("--dropout", type=float, default=0.0, help="the same dropout for every variant")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="FLAG=V1,V2",
        help=f"a training flag as another axis, first value = the baseline's (repeatable): {', '.join(VARY_FLAGS)}",
    )
    p.add_argument("--diagnostics", action="store_true", help="every run writes its diagnostics.csv (per step)")
    p.add_argument("--dsop", default="none", help="DSoP settings as a variant axis: none and/or '+'-joined stages")
    p.add_argument("--dsop-iterations", default="5", help="comma-separated iSQRT steps T for the DSoP runs")
    add_jobs(p, help="runs trained at once, one torch thread each (with --cluster: at most this many at a time)")
    add_out(p, default="runs/ablate", help="sweep folder: ablation.md, ablation.csv, ablation.png, runs/")
    add_cluster_arguments(p)
    add_verbosity(p)


MAX_SEEDS = 1000  # seeds per grid point: a typo (--seeds 1000000000) would plan forever


def check(args: argparse.Namespace) -> list:
    """Everything refused in a second, before any training and before --out is made; returns the runs."""
    check_lists(args)
    args.vary = parse_vary(args.vary)
    for flag, values in args.vary.items():
        if len({float(v) for v in values}) != len(values):
            raise ValueError(f"--vary {flag}={','.join(values)} gives one value twice")
    for flag, dest in (("dropout", "--dropout"), ("lr", "--lr")):
        if flag in args.vary and any(a == dest or a.startswith(dest + "=") for a in args.given):
            raise ValueError(f"{dest} and --vary {flag} both given; keep one")
    if not 2 <= args.seeds <= MAX_SEEDS or args.jobs < 0:
        raise ValueError(
            f"--seeds must be >= 2 (an interval needs two) and <= {MAX_SEEDS}, --jobs >= 0; "
            f"got {args.seeds}, {args.jobs}"
        )
    if args.baseline not in split(args.variants):
        raise ValueError(f"--baseline {args.baseline!r} is not among --variant")
    runs = plan(args)
    check_runs(runs, args)
    sweep = args.out / "sweep.json"
    if sweep.is_file():  # check_recipe compares with it: it must be a recipe
        try:
            saved = json.loads(sweep.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{sweep} is not a readable sweep recipe ({exc}); remove it, or use a new --out") from None
        if not isinstance(saved, dict):
            raise ValueError(f"{sweep} is not a sweep recipe (a JSON object); remove it, or use a new --out")
    args.out.mkdir(parents=True, exist_ok=True)
    check_recipe(args)
    return runs


def check_lists(args: argparse.Namespace) -> None:
    """The comma lists: none empty, none naming one thing twice (two runs would share a folder)."""
    try:
        args.dsop_iterations = [int(v) for v in split(args.dsop_iterations)]
    except ValueError:
        raise ValueError(f"--dsop-iterations takes whole numbers, e.g. 3,5; got {args.dsop_iterations!r}") from None
    for flag, values in (
        ("--arch", split(args.arch)),
        ("--variant", split(args.variants)),
        ("--dsop", split(args.dsop)),
        ("--dsop-iterations", args.dsop_iterations),
    ):
        if not values:
            raise ValueError(f"{flag} is empty; give at least one value")
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            raise ValueError(f"{flag} names {twice[0]!r} twice")


def run_config(run, args: argparse.Namespace):
    """The TrainConfig the trainer builds from ``command(run, args)``'s flags."""
    from .config import TrainConfig

    varied = {
        VARY_FLAGS[f]: float(v) for f, v in {**{f: v[0] for f, v in args.vary.items()}, **dict(run.settings)}.items()
    }
    settings = {"lr": args.lr, "dropout": args.dropout, **varied}
    stages = () if run.dsop == "none" else tuple(run.dsop.split("+"))
    return TrainConfig(
        arch=run.arch,
        variant=run.variant,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        input_size=args.input_size,
        dsop_stages=stages,
        dsop_iterations=run.iterations,
        seed=run.seed,
        **settings,
    )


def check_runs(runs: list, args: argparse.Namespace) -> None:
    """Each run's settings through the trainer's own checks (every flag, each axis's baseline value too), its
    model built once on the meta device (arch x variant x DSoP: no memory), and the --data spec parsed (no data
    is loaded)."""
    import torch

    from .data import check_spec
    from .models import build_from_spec

    models = set()
    for run in runs:
        config = run_config(run, args)
        try:
            config.validate()
        except ValueError as exc:  # name the axis values that gave the bad setting
            varied = {**{f: v[0] for f, v in args.vary.items()}, **dict(run.settings)}
            where = f" (with --vary {', '.join(f'{f}={v}' for f, v in varied.items())})" if varied else ""
            raise ValueError(f"{exc}{where}") from None
        key = (run.arch, run.variant, run.dsop, run.iterations)
        if key not in models:
            models.add(key)
            with torch.device("meta"):
                build_from_spec(config.resolved().model_spec(num_classes=10))
    check_spec(args.data, args.input_size)


def run(args: argparse.Namespace) -> int:
    try:
        check_cluster(args)
        runs = check(args)
    except UsageError:
        raise
    except (ValueError, OSError) as exc:
        print(f"deepsquare ablate: error: {exc}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    if args.cluster:
        from .cluster import sweep

        try:
            results, failures = sweep(runs, args)
        except ValueError as exc:  # the cluster could not be reached or started
            print(f"deepsquare ablate: error: {exc}", file=sys.stderr)
            return 1
    else:
        results, failures = local_sweep(runs, args)
    if not results:
        print(f"deepsquare ablate: error: every run failed; first: {failures[0]}", file=sys.stderr)
        return 1
    grid = {(r.name, r.seed): i for i, r in enumerate(runs)}
    results.sort(key=lambda r: grid.get((r["name"], r["seed"]), len(grid)))  # the grid's order, however they ended
    rows = summarize(results, args.baseline)
    write_outputs(results, rows, args)
    print(markdown(rows, args, time.perf_counter() - started, results))
    for failure in failures:
        print(f"deepsquare ablate: {failure}", file=sys.stderr)
    print(f"report: {args.out / 'ablation.md'}")
    return 1 if failures else 0


def local_sweep(runs: list, args: argparse.Namespace) -> tuple[list, list[str]]:
    """Every run in a thread of this process (its trainer a child process); (results, failures)."""
    from tqdm import tqdm

    results, failures = [], []
    with (
        ThreadPoolExecutor(max_workers=jobs_or_cores(args.jobs)) as pool,
        tqdm(total=len(runs), desc="ablation", unit="run", file=sys.stderr, disable=args.quiet) as bar,
    ):
        futures = {pool.submit(execute, r, args): r for r in runs}
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except RuntimeError as exc:
                failures.append(str(exc))
            bar.update()
    return results, failures
