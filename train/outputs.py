"""The files a training run writes into ``--out``: ``last.ckpt`` every epoch, ``best.ckpt`` when val top-1
improved, ``metrics.csv``, and the held-out test figures once the run is over. Each is written whole (an
interrupted write leaves the previous file), and only rank 0 writes."""

from __future__ import annotations

import csv
import io
import platform
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from deepsquare.runtime.files import copy_atomically, write_text_atomically

from .checkpoint import Checkpoint
from .distributed import Dist, TrainingError

if TYPE_CHECKING:
    from .run_state import Run


def versions() -> dict[str, str]:
    # str(): torch.__version__ is a TorchVersion object, which weights-only loading refuses.
    out = {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "platform": platform.platform(),
    }
    try:
        out["deepsquare"] = metadata.version("deepsquare")
    except metadata.PackageNotFoundError:
        out["deepsquare"] = "unknown"
    return out


def check_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        kept = f"; {out / 'last.ckpt'} is intact" if (out / "last.ckpt").is_file() else ""
        raise TrainingError(f"cannot write to --out {out}: {exc.strerror or exc}{kept}") from exc


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """``checkpoint.save(path)``, whose failed write is the OSError behind it: on a full disk torch.save raises
    RuntimeError ("unexpected pos ...") while closing its archive, over the OSError that stopped it."""
    try:
        checkpoint.save(path)
    except RuntimeError as exc:
        if isinstance(exc.__context__, OSError):
            raise exc.__context__ from None
        raise


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, buffer.getvalue())


def save_epoch(run: Run, ctx: Dist, epoch: int, out: Path) -> None:
    """last.ckpt every epoch, best.ckpt when val top-1 improved, metrics.csv: each written whole."""
    top1 = run.metrics[-1]["val_top1"]
    improved = top1 > run.best_top1
    run.best_top1 = max(run.best_top1, top1)
    checkpoint = Checkpoint(
        spec=run.spec,
        state_dict={k: v.detach().cpu() for k, v in run.model.state_dict().items()},
        classes=list(run.data.classes),
        input_size=run.cfg.input_size,
        mean=tuple(run.data.mean),
        std=tuple(run.data.std),
        data=run.cfg.data,
        epoch=epoch + 1,
        metrics=run.metrics,
        provenance={
            **versions(),
            "world_size": ctx.world,
            "argv": list(sys.argv),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        extra={
            "layout": "NCHW",
            "optimizer": run.optimizer.state_dict(),
            "best_top1": run.best_top1,
            "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(run.config).items()},
        },
    )
    save_checkpoint(checkpoint, out / "last.ckpt")
    if improved:
        copy_atomically(out / "last.ckpt", out / "best.ckpt")
    write_metrics(out / "metrics.csv", run.metrics)
    if run.diagnostics is not None:
        run.diagnostics.save(out)


def six_digits(row: dict[str, Any]) -> dict[str, Any]:
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in row.items()}


def save_test(run: Run, out: Path, result: dict[str, Any]) -> None:
    """The test figures go into the last epoch's metrics row (metrics.csv, last.ckpt, model.ckpt) and, with
    best.ckpt's own, into each checkpoint's ``test`` entry."""
    if result["split"]:
        run.metrics[-1].update(result["final"])
    for name in ("last.ckpt", "best.ckpt"):
        checkpoint = Checkpoint.load(out / name)
        if name == "last.ckpt":
            checkpoint.metrics = run.metrics
        checkpoint.extra["test"] = result
        save_checkpoint(checkpoint, out / name)
    write_metrics(out / "metrics.csv", run.metrics)
