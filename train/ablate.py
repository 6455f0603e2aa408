"""The sweep behind ``deepsquare ablate``: plan the grid, train each run in its own process, pair and report.

The command line and what the sweep means are in ``deepsquare.train.ablate_cli``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deepsquare.runtime import processes
from deepsquare.runtime.files import write_text_atomically

try:
    import fcntl
except ImportError:  # Windows: runs are not locked
    fcntl = None  # type: ignore[assignment]

LOCK = "train.lock"  # in each run's folder, held by the sweep that trains it


@dataclass(frozen=True)
class Run:
    arch: str
    variant: str
    dsop: str  # "none" or "+"-joined stages
    iterations: int
    seed: int
    settings: tuple[tuple[str, str], ...] = ()  # (flag, value) of the --vary axes, baseline values left out

    @property
    def name(self) -> str:
        dsop = "" if self.dsop == "none" else f"+dsop({self.dsop.replace('+', ',')},T={self.iterations})"
        varied = f" [{', '.join(f'{flag}={value}' for flag, value in self.settings)}]" if self.settings else ""
        return f"{self.arch}/{self.variant}{dsop}{varied}"

    def folder(self, out: Path) -> Path:
        name = self.name.replace("/", "_").replace(",", "-").replace("=", "").replace(" [", "_").replace("]", "")
        return out / "runs" / name.replace(" ", "") / f"seed{self.seed}"


# Training flags --vary may make an axis: the recipe's numbers, not the model's identity (that is --variant).
VARY_FLAGS = {
    "dropout": "dropout",
    "lr": "lr",
    "warmup-epochs": "warmup_epochs",
    "weight-decay": "weight_decay",
    "ss-init": "ss_init",
    "ss-offset": "ss_offset",
    "ss-lr-scale": "ss_lr_scale",
    "sex-alpha": "sex_alpha",
    "clip-grad": "clip_grad",
    "clip-unitwise": "clip_unitwise",
    "label-smoothing": "label_smoothing",
}


# Flags that only act on one module: a variant without it trains identically at every value, once.
APPLIES = {
    "ss-init": lambda v: v.square_softmin,
    "ss-offset": lambda v: v.square_softmin,
    "ss-lr-scale": lambda v: v.square_softmin,
    "sex-alpha": lambda v: v.attention == "sex",
}


def parse_vary(texts: list[str]) -> dict[str, list[str]]:
    """``["dropout=0,0.2", ...]`` -> ``{"dropout": ["0", "0.2"]}``, every value a number."""
    axes: dict[str, list[str]] = {}
    for text in texts:
        flag, _, values = text.partition("=")
        flag = flag.strip().removeprefix("--")
        if flag not in VARY_FLAGS:
            raise ValueError(f"--vary {text!r}: {flag!r} cannot vary; one of {', '.join(VARY_FLAGS)}")
        if flag in axes:
            raise ValueError(f"--vary {flag} is given twice")
        parts = split(values)
        if len(parts) < 2 or len(set(parts)) != len(parts):
            raise ValueError(f"--vary {text!r}: give two or more different values, e.g. {flag}=0,0.2")
        for value in parts:
            try:
                float(value)
            except ValueError:
                raise ValueError(f"--vary {text!r}: {value!r} is not a number") from None
        axes[flag] = parts
    return axes


def combinations(axes: dict[str, list[str]]) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the axes' values, as the non-baseline (flag, value) pairs; the baseline first."""
    combos: list[tuple[tuple[str, str], ...]] = [()]
    for flag, values in axes.items():
        combos = [combo + (((flag, value),) if i else ()) for combo in combos for i, value in enumerate(values)]
    return combos


def split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def plan(args: argparse.Namespace) -> list[Run]:
    """The grid, every name checked before any training."""
    from .config import TrainConfig
    from .variants import parse_variant

    runs: list[Run] = []
    for arch in split(args.arch):
        for variant in split(args.variants):
            for dsop in split(args.dsop):
                for iterations in args.dsop_iterations if dsop != "none" else [args.dsop_iterations[0]]:
                    parsed = parse_variant(variant)
                    kept = {f: v if APPLIES.get(f, lambda _: True)(parsed) else v[:1] for f, v in args.vary.items()}
                    for settings in combinations(kept):
                        for seed in range(args.seeds):
                            stages = () if dsop == "none" else tuple(dsop.split("+"))
                            overrides = {VARY_FLAGS[f]: float(v) for f, v in settings}
                            TrainConfig(
                                arch=arch,
                                variant=variant,
                                dsop_stages=stages,
                                dsop_iterations=iterations,
                                epochs=args.epochs,
                                seed=seed,
                                **overrides,
                            ).validate()
                            runs.append(Run(arch, variant, dsop, iterations, seed, settings))
    return runs


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    """What every run of the sweep shares; the grid's axes (archs, variants, seeds, values) may grow. The
    trainer's own defaults for the recipe numbers are part of it: a newer default must not join an older sweep."""
    from .config import TrainConfig

    defaults = TrainConfig()
    return {
        "trainer_defaults": {flag: getattr(defaults, name) for flag, name in VARY_FLAGS.items()},
        "data": args.data,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "input_size": args.input_size,
        "lr": args.lr,
        "dropout": args.dropout,
        "baseline_settings": {f: v[0] for f, v in args.vary.items()},
    }


def check_recipe(args: argparse.Namespace) -> None:
    """Refuse to mix recipes in one --out; write OUT/sweep.json for a new sweep."""
    path, wanted = args.out / "sweep.json", recipe(args)
    if path.is_file():
        saved = json.loads(path.read_text())
        differ = [f"{k} {wanted[k]!r} (the sweep has {saved.get(k)!r})" for k in wanted if saved.get(k) != wanted[k]]
        if differ:
            raise ValueError(
                f"{args.out} holds a sweep with another recipe: {'; '.join(differ)}. "
                "Use a new --out, or the sweep's own settings"
            )
    else:
        write_text_atomically(path, json.dumps(wanted, indent=2) + "\n")


def command(run: Run, args: argparse.Namespace, folder: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "deepsquare.train",
        "--quiet",
        "--arch",
        run.arch,
        "--variant",
        run.variant,
        "--data",
        args.data,
        "--epochs",
        str(args.epochs),
        "--seed",
        str(run.seed),
        "--out",
        str(folder),
        "--dropout",
        str(args.dropout),
        "--batch-size",
        str(args.batch_size),
        "--input-size",
        str(args.input_size),
    ]
    if args.lr is not None:
        cmd += ["--lr", str(args.lr)]
    if run.dsop != "none":
        cmd += ["--dsop", run.dsop.replace("+", ","), "--dsop-iterations", str(run.iterations)]
    baseline = {flag: values[0] for flag, values in args.vary.items()}
    for flag, value in {**baseline, **dict(run.settings)}.items():
        cmd += [f"--{flag}", value]
    if args.diagnostics:
        cmd.append("--diagnostics")
    return cmd


class RunBusy(RuntimeError):
    """Another live process holds the run's lock: it is training that run now."""


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/train.lock`` (fcntl.flock, with this pid in it) while the block runs; RunBusy when a live
    process holds it. The kernel drops the lock with its holder, so a killed sweep leaves no stale lock."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as f:
        if fcntl is None:
            yield
            return
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            raise RunBusy(f"being trained by pid {holder}") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def finished(done: Path) -> dict[str, Any] | None:
    if done.is_file():
        record = json.loads(done.read_text())
        if "split" in record:  # a result from before test splits (val only) is trained again
            return record
    return None


def execute(run: Run, args: argparse.Namespace, threads: int = 1) -> dict[str, Any]:
    """Train one run in its own process (``threads`` torch threads) unless its result exists; return the result.

    The sweep holds the run's lock while its trainer runs (the trainer dies with the sweep): a run that another
    live sweep is training is skipped with RunBusy ("being trained by pid N"), never trained twice at once.
    On a Ray cluster the same function runs in a Ray worker (``deepsquare.train.cluster``), which then holds the
    lock: the file lock works across the nodes when the shared file system supports ``flock``."""
    folder = run.folder(args.out)
    done = folder / "result.json"
    if (record := finished(done)) is not None:
        return record
    try:
        with run_lock(folder):
            return finished(done) or train_locked(run, args, folder, threads)
    except RunBusy as exc:
        raise RunBusy(f"run {run.name} seed {run.seed} skipped: {exc}; run the sweep again once it is done") from None


def train_locked(run: Run, args: argparse.Namespace, folder: Path, threads: int = 1) -> dict[str, Any]:
    done = folder / "result.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    result = processes.run(command(run, args, folder), env=env)  # the trainer dies with this process
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"run {run.name} seed {run.seed} failed: {last}")
    with open(folder / "metrics.csv") as f:
        final = list(csv.DictReader(f))[-1]
    split = "test" if final.get("test_top1") else "val"  # val only when the data has no test split
    record = {
        **asdict(run),
        "settings": dict(run.settings),
        "name": run.name,
        "split": split,
        "top1": float(final[f"{split}_top1"]),
        "top5": float(final[f"{split}_top5"]),
        "val_top1": float(final["val_top1"]),
        "val_top5": float(final["val_top5"]),
        "train_s": round(time.perf_counter() - started, 1),
    }
    write_text_atomically(done, json.dumps(record, indent=2) + "\n")
    return record
