"""The training loop behind ``deepsquare train`` (the papers' recipe by default).

SGD with Nesterov momentum 0.9, linear warm-up then cosine decay, weight decay per arch, one dropout
before the FC for every variant (0 by default: the paper's 0.2 for DeepSquare models only made them
trail GAP here, see the docs' results/accuracy.md; DeepSquare, arXiv:1906.04979), DSoP loss
``alpha*L + sum beta_i*L_i`` (Detachable Second-order Pooling, arXiv:2006.00809).
Deterministic on CPU: the data order, augmentation and dropout of epoch ``e`` are seeded
from ``(seed, e)``, so an interrupted run resumed from its last checkpoint ends with the
same weights as an uninterrupted one. ``best.ckpt`` is chosen on the val split; the held-out test
split is evaluated once, after the last epoch (final model and ``best.ckpt``), and never selects
anything. Under ``torchrun`` it trains with DDP (gloo on CPU,
nccl on GPU), each rank on its shard, and only rank 0 writes files.

The pieces, one module each: ``run_state`` (a run's state, new or resumed), ``optim`` (parameter groups, the
learning-rate schedule, unit-wise clipping), ``evaluation`` (accuracy on a split), ``outputs`` (the files a run
writes). This module is the loop over them: one epoch of SGD, then the test split once at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from deepsquare.runtime.files import copy_atomically

from .checkpoint import Checkpoint, CheckpointError, normalize
from .config import TrainConfig
from .data import augment, check_spec
from .diagnostics import Diagnostics
from .distributed import Dist, TrainingError, setup_distributed
from .evaluation import evaluate, top1_correct
from .optim import clip_unitwise_, lr_at
from .outputs import check_out_dir, save_epoch, save_test, six_digits
from .run_state import Run, start_run
from .spec import DSoPSpec


def dsop_loss(
    logits: Tensor, branch_logits: list[Tensor], targets: Tensor, dsop: DSoPSpec | None, label_smoothing: float = 0.0
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """``L = alpha L_main + sum_i beta_i L_i`` (DSoP, arXiv:2006.00809, eq. 6): (total, main, per branch)."""
    main = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    branches = [F.cross_entropy(b, targets, label_smoothing=label_smoothing) for b in branch_logits]
    total = (dsop.main_weight if dsop else 1.0) * main
    for beta, branch in zip(dsop.loss_weights if dsop else (), branches, strict=True):
        total = total + beta * branch
    return total, main, branches


def stop_if_not_finite(loss: Tensor, ctx: Dist, epoch: int, step: int, global_step: int, last_path: Path) -> None:
    """EleSquare is not Lipschitz: a diverging run stops at once, naming the step and what was kept."""
    finite = torch.tensor([float(torch.isfinite(loss).item())])
    if ctx.world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if finite.item() < 1:
        kept = (
            f"the last good checkpoint {last_path} (epoch {epoch}) is intact"
            if last_path.exists()
            else "no checkpoint had been written yet"
        )
        raise TrainingError(
            f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1} (global step "
            f"{global_step + 1}); training stopped, {kept}. EleSquare can diverge: lower --lr, "
            f"lengthen --warmup-epochs, or move the square modules"
        )


def train_epoch(run: Run, epoch: int, ctx: Dist, quiet: bool, last_path: Path) -> dict[str, Any]:
    """One epoch of SGD; returns the epoch's metrics row (losses, lr, speed)."""
    cfg, data, dsop = run.cfg, run.data, run.spec.dsop
    epoch_seed = cfg.seed * 1_000_003 + epoch
    torch.manual_seed(epoch_seed)  # dropout
    generator = torch.Generator().manual_seed(epoch_seed)  # order and augmentation
    order = torch.randperm(len(data.train), generator=generator)[ctx.rank :: ctx.world]
    run.net.train()
    sums = torch.zeros(2 + (len(dsop.stages) if dsop else 0), dtype=torch.float64)
    started = time.perf_counter()
    bar = None
    if ctx.main and not quiet:
        from tqdm import tqdm

        bar = tqdm(total=run.steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", file=sys.stdout, leave=True)
    for step in range(run.steps):
        global_step = epoch * run.steps + step
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        x = normalize(augment(data.train.images[batch], generator).to(ctx.device), data.mean, data.std)
        y = data.train.labels[batch].to(ctx.device)
        for group in run.optimizer.param_groups:
            group["lr"] = lr_at(global_step, run.total_steps, run.warmup_steps, cfg.lr or 0.0) * group.get(
                "lr_scale", 1
            )
        output = run.net(x)
        logits, branches = output if dsop else (output, [])
        loss, main_loss, branch_losses = dsop_loss(logits, branches, y, dsop, cfg.label_smoothing)
        stop_if_not_finite(loss, ctx, epoch, step, global_step, last_path)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if run.diagnostics is not None:
            run.diagnostics.record(epoch, step, run.optimizer.param_groups[0]["lr"], main_loss, logits)
        if cfg.clip_unitwise > 0:
            clip_unitwise_(run.model.named_parameters(), cfg.clip_unitwise)
        if cfg.clip_grad > 0:
            # SP and SS make the logits quartic in the features: without a clip the
            # first steps of a small-batch run can overshoot into inf.
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad)
        run.optimizer.step()
        sums += torch.tensor([loss.item(), main_loss.item(), *[b.item() for b in branch_losses]], dtype=torch.float64)
        if bar is not None:
            elapsed = time.perf_counter() - started
            bar.set_postfix(
                loss=f"{sums[0].item() / (step + 1):.3f}", img_s=f"{(step + 1) * len(batch) * ctx.world / elapsed:.0f}"
            )
            bar.update()
    if bar is not None:
        bar.close()
    if ctx.world > 1:
        dist.all_reduce(sums)
        sums /= ctx.world
    epoch_s = time.perf_counter() - started
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"]}
    row.update(train_loss=sums[0].item() / run.steps, train_loss_main=sums[1].item() / run.steps)
    for i, stage in enumerate(dsop.stages if dsop else ()):
        row[f"train_loss_dsop_{stage}"] = sums[2 + i].item() / run.steps
    row.update({"images_per_s": run.steps * cfg.batch_size * ctx.world / epoch_s, "epoch_s": epoch_s})
    return row


def test_once(run: Run, ctx: Dist, out: Path) -> dict[str, Any]:
    """The held-out test split, once the run is over: the final model and ``best.ckpt`` (chosen on val).

    Rank 0 alone evaluates the whole split (no collective calls). Without a test split the result says why.
    """
    data, batch_size = run.data, run.cfg.batch_size
    if data.test is None:
        return {"split": None, "note": data.no_test_reason or f"{data.name} has no test split"}
    local = Dist(device=ctx.device)
    final = evaluate(run.model, data.test, data, local, batch_size, "test")
    best = Checkpoint.load(out / "best.ckpt")
    if best.epoch != run.cfg.epochs:  # otherwise best.ckpt holds the final weights
        best_model = best.build_model().to(ctx.device)
        best_figures = evaluate(best_model, data.test, data, local, batch_size, "test")
    else:
        best_figures = final
    return {
        "split": "test",
        "images": len(data.test),
        "final": six_digits(final),
        "best": {"epoch": best.epoch, **six_digits(best_figures)},
    }


def disk_error(what: str, out: Path, exc: OSError) -> TrainingError:
    """A failed write (a full disk) as one line naming the error and the last good checkpoint (each file is
    written whole, so ``last.ckpt`` is whichever epoch was written last)."""
    last = out / "last.ckpt"
    try:
        kept = f"the last good checkpoint {last} (epoch {Checkpoint.load(last).epoch}) is intact"
    except (CheckpointError, OSError):
        kept = "no checkpoint was kept"
    return TrainingError(f"could not write {what} to {out}: {exc.strerror or exc}; {kept}")


def overflow_warning(nonfinite: int, images: int) -> str:
    """Why a model that trained cannot ship: in eval mode, BatchNorm's running statistics do not rein in an
    unusual image's activations as a batch's own statistics did in training, and each EleSquare squares them."""
    return (
        f"warning: {nonfinite} of {images} test images give non-finite logits in eval mode (EleSquare squaring "
        "an unusual image's activations block after block until they overflow): such a model cannot ship, and "
        "`deepsquare export` refuses it when its validation images overflow too (the docs' Results > Accuracy, "
        "Square-Encoding, say what was tried)"
    )


def finish(run: Run, ctx: Dist, out: Path, say) -> None:
    """The held-out test split once, its figures into the files, and ``model.ckpt``; a failed write is one line
    (every file is written whole: ``last.ckpt`` of the last epoch stays as it was)."""
    result = test_once(run, ctx, out)
    if result["split"]:
        f, b = result["final"], result["best"]
        say(
            f"test (held out, evaluated once): final model top-1 {f['test_top1']:.2f}% top-5 "
            f"{f['test_top5']:.2f}%; best.ckpt (epoch {b['epoch']}, chosen on val) top-1 "
            f"{b['test_top1']:.2f}%"
        )
        if f["test_nonfinite"]:
            say(overflow_warning(f["test_nonfinite"], result["images"]))
    else:
        say(f"no test split: {result['note']}")
    try:
        save_test(run, out, result)
    except OSError as exc:
        raise disk_error("the test figures", out, exc) from exc
    try:
        copy_atomically(out / "last.ckpt", out / "model.ckpt")
    except OSError as exc:
        raise disk_error("model.ckpt", out, exc) from exc


def train(config: TrainConfig, *, quiet: bool = False, resume: bool = False, must_match: tuple[str, ...] = ()) -> Path:
    """Train and return the path of ``OUT/model.ckpt``. Raises TrainingError and friends."""
    config.validate()
    if not resume:  # a resumed run reads its data spec from last.ckpt
        check_spec(config.data, config.input_size)
    out = Path(config.out)
    ctx = setup_distributed(config.device)
    say = (lambda msg: print(msg, flush=True)) if ctx.main else (lambda msg: None)
    try:
        if ctx.main:
            check_out_dir(out)
        last_path = out / "last.ckpt"
        run = start_run(config, ctx, resume, last_path, must_match)
        cfg, data, dsop = run.cfg, run.data, run.spec.dsop
        if run.start_epoch:
            say(f"resuming from {last_path} after epoch {run.start_epoch}")
        if cfg.diagnostics and ctx.main:
            run.diagnostics = Diagnostics(run.model)
            run.diagnostics.resume(out, run.start_epoch)
        say(
            f"training {run.spec.arch} {run.spec.variant}{' + DSoP ' + ','.join(dsop.stages) if dsop else ''} on "
            f"{data.name} ({len(data.train)} train / {len(data.val)} val / "
            f"{len(data.test) if data.test is not None else 'no'} test, {len(data.classes)} classes, "
            f"{cfg.input_size}px), {cfg.epochs} epochs x {run.steps} steps, {ctx.world} process(es) on {ctx.device}"
        )
        for epoch in range(run.start_epoch, cfg.epochs):
            row = train_epoch(run, epoch, ctx, quiet, last_path)
            speed = {key: row.pop(key) for key in ("images_per_s", "epoch_s")}
            row.update(evaluate(run.model, data.val, data, ctx, cfg.batch_size))
            row.update(speed)
            run.metrics.append(six_digits(row))
            overflow = f", {row['val_nonfinite']} val images give non-finite logits" if row["val_nonfinite"] else ""
            say(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}, val top-1 {row['val_top1']:.2f}% "
                f"top-5 {row['val_top5']:.2f}%{overflow}, {row['images_per_s']:.0f} img/s, {row['epoch_s']:.1f} s"
            )
            if ctx.main:
                try:
                    save_epoch(run, ctx, epoch, out)
                except OSError as exc:  # a full disk: one line, and every file written before is intact
                    raise disk_error(f"the checkpoint of epoch {epoch + 1}", out, exc) from exc
            if ctx.world > 1:
                dist.barrier()
        final = out / "model.ckpt"
        if ctx.main:
            finish(run, ctx, out, say)
        if ctx.world > 1:
            dist.barrier()
        return final
    finally:
        if ctx.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["CheckpointError", "TrainConfig", "TrainingError", "dsop_loss", "top1_correct", "train"]
