"""The training loop behind ``deepsquare-train`` (the papers' recipe by default).

SGD with Nesterov momentum 0.9, linear warm-up then cosine decay, weight decay per arch, one dropout
before the FC for every variant (0 by default: the paper's 0.2 for DeepSquare models only made them
trail GAP here, see README; DeepSquare, arXiv:1906.04979), DSoP loss
``alpha*L + sum beta_i*L_i`` (Detachable Second-order Pooling, arXiv:2006.00809).
Deterministic on CPU: the data order, augmentation and dropout of epoch ``e`` are seeded
from ``(seed, e)``, so an interrupted run resumed from its last checkpoint ends with the
same weights as an uninterrupted one. ``best.ckpt`` is chosen on the val split; the held-out test
split is evaluated once, after the last epoch (final model and ``best.ckpt``), and never selects
anything. Under ``torchrun`` it trains with DDP (gloo on CPU,
nccl on GPU), each rank on its shard, and only rank 0 writes files.
"""

from __future__ import annotations

import csv
import io
import math
import platform
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from .checkpoint import Checkpoint, CheckpointError, normalize
from .config import TrainConfig
from .data import DataBundle, ImageSet, augment, load_data
from .diagnostics import Diagnostics
from .distributed import Dist, TrainingError, setup_distributed
from .files import copy_atomically, write_text_atomically
from .layers import SquareExcitation, SquareSoftmin
from .models import SquareNet, build_from_spec
from .spec import DSoPSpec, ModelSpec


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up from base/warmup to base, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * base * (1 + math.cos(math.pi * progress))


def clip_unitwise_(named_parameters: Iterable[tuple[str, nn.Parameter]], ratio: float, eps: float = 1e-3) -> None:
    """Adaptive gradient clipping (NFNets, "High-Performance Large-Scale Image Recognition Without Normalization",
    arXiv:2102.06171): each output unit's gradient norm is capped at ``ratio`` times its weight norm (at least
    ``eps``), so that a few layers with exploding gradients are held back without shrinking the others, as a
    global norm clip does. Biases and other vectors are clipped element by element; the classifier (``fc``) and
    the Square-Softmin scale are left alone, as NFNets leave the final layer."""
    for name, p in named_parameters:
        if p.grad is None or name.startswith(("fc.", "softmin.")):
            continue
        dims = tuple(range(1, p.ndim))
        weight_norm = torch.linalg.vector_norm(p.detach(), dim=dims, keepdim=True) if dims else p.detach().abs()
        grad_norm = torch.linalg.vector_norm(p.grad, dim=dims, keepdim=True) if dims else p.grad.abs()
        max_norm = ratio * weight_norm.clamp(min=eps)
        p.grad.mul_(torch.where(grad_norm > max_norm, max_norm / grad_norm.clamp(min=1e-6), 1.0))


def param_groups(model: nn.Module, weight_decay: float, ss_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    # No decay on BN, biases and the square modules' scalars (decay would pull the
    # Square-Softmin scale and the Square-Excitation alpha towards 0).
    scale = [m.scale for m in model.modules() if isinstance(m, SquareSoftmin)] if ss_lr_scale != 1 else []
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1 and not any(p is s for s in scale)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if scale:  # the Square-Softmin scale's own step size (--ss-lr-scale x the schedule's lr; 0: not trained)
        groups.append({"params": scale, "weight_decay": 0.0, "lr_scale": ss_lr_scale})
    return groups


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
        raise TrainingError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc


@torch.no_grad()
def evaluate(
    model: nn.Module, split: ImageSet, data: DataBundle, ctx: Dist, batch_size: int, prefix: str = "val"
) -> dict[str, float]:
    """Main-head loss, top-1 and top-5 on one split (each rank a shard, then summed), keys ``PREFIX_top1``..."""
    model.eval()
    idx = torch.arange(len(split))[ctx.rank :: ctx.world]
    totals = torch.zeros(4, dtype=torch.float64)  # loss sum, top1, top5, count
    k = min(5, len(data.classes))
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        x = normalize(split.images[b].to(ctx.device), data.mean, data.std)
        y = split.labels[b].to(ctx.device)
        logits = model(x)
        topk = logits.topk(k, dim=1).indices
        totals += torch.tensor(
            [
                F.cross_entropy(logits, y, reduction="sum").item(),
                (topk[:, 0] == y).sum().item(),
                (topk == y[:, None]).any(dim=1).sum().item(),
                len(b),
            ],
            dtype=torch.float64,
        )
    if ctx.world > 1:
        dist.all_reduce(totals)
    loss, top1, top5, n = totals.tolist()
    return {
        f"{prefix}_loss": loss / max(n, 1),
        f"{prefix}_top1": 100 * top1 / max(n, 1),
        f"{prefix}_top5": 100 * top5 / max(n, 1),
    }


@torch.no_grad()
def top1_correct(
    model: nn.Module, split: ImageSet, mean: tuple[float, ...], std: tuple[float, ...], batch_size: int = 256
) -> Tensor:
    """Per image of ``split``: 1 where the model's top-1 class is the label, else 0 (for paired comparisons)."""
    model.eval()
    device = next(model.parameters()).device
    hits = []
    for start in range(0, len(split), batch_size):
        x = normalize(split.images[start : start + batch_size].to(device), mean, std)
        hits.append((model(x).argmax(dim=1).cpu() == split.labels[start : start + batch_size]).long())
    return torch.cat(hits)


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, buffer.getvalue())


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


@dataclass
class Run:
    """What a run carries from epoch to epoch."""

    config: TrainConfig  # as given (saved for --resume)
    cfg: TrainConfig  # resolved
    data: DataBundle
    spec: ModelSpec
    model: SquareNet
    net: nn.Module  # the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    steps: int  # per epoch
    metrics: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    best_top1: float = -1.0
    diagnostics: Diagnostics | None = None

    @property
    def total_steps(self) -> int:
        return self.cfg.epochs * self.steps

    @property
    def warmup_steps(self) -> int:
        return round((self.cfg.warmup_epochs or 0) * self.steps)


def start_run(config: TrainConfig, ctx: Dist, resume: bool, last_path: Path, must_match: tuple[str, ...] = ()) -> Run:
    """Config (resumed or new), data, model and optimizer, ready for the first epoch to run.

    ``must_match``: settings the user gave explicitly; resuming a run made with other values is refused.
    """
    state: Checkpoint | None = None
    if resume:
        if not last_path.exists():
            raise TrainingError(f"--resume: no {last_path} to resume from")
        state = Checkpoint.load(last_path)
        saved = TrainConfig.from_dict(state.extra["train_config"])
        differ = [
            f"--{n.replace('_', '-')} {getattr(config, n)!r} (the run has {getattr(saved, n)!r})"
            for n in must_match
            if getattr(config, n) != getattr(saved, n)
        ]
        if differ:
            raise TrainingError(
                f"--resume continues the run in {last_path.parent}, made with other settings: "
                f"{'; '.join(differ)}. Drop those flags, or train into a new --out"
            )
        # A resumed run keeps its recipe; only the length may be extended.
        saved.epochs, saved.out, saved.device = config.epochs, config.out, config.device
        saved.diagnostics = config.diagnostics
        config = saved
    cfg = config.resolved()
    data = load_data(cfg.data, cfg.input_size, cfg.seed)
    if len(data.train) < cfg.batch_size * ctx.world:
        raise TrainingError(
            f"{cfg.data} has {len(data.train)} training images, fewer than one batch "
            f"({cfg.batch_size} x {ctx.world} processes); lower --batch-size"
        )
    torch.manual_seed(cfg.seed)
    spec = cfg.model_spec(len(data.classes))
    model = init_square_modules(build_from_spec(spec), cfg) if state is None else state.build_model()
    model.to(ctx.device)
    optimizer = torch.optim.SGD(
        param_groups(model, cfg.weight_decay or 0.0, cfg.ss_lr_scale),
        lr=cfg.lr or 0.0,
        momentum=cfg.momentum,
        nesterov=True,
    )
    net: nn.Module = model
    if ctx.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.index is not None else None
        )
    run = Run(config, cfg, data, spec, model, net, optimizer, len(data.train) // (cfg.batch_size * ctx.world))
    if state is not None:
        optimizer.load_state_dict(state.extra["optimizer"])
        # A finished run's test figures describe the model it ended with; an extended run is tested anew.
        metrics = [{k: v for k, v in row.items() if not k.startswith("test_")} for row in state.metrics]
        run.metrics, run.start_epoch, run.best_top1 = metrics, state.epoch or 0, state.extra["best_top1"]
        if run.start_epoch >= cfg.epochs:
            raise TrainingError(
                f"{last_path} already finished epoch {run.start_epoch}; pass --epochs > {run.start_epoch}"
            )
    return run


@torch.no_grad()
def init_square_modules(model: SquareNet, cfg: TrainConfig) -> SquareNet:
    """The starting values of the square modules' scalars (``--ss-init``, ``--sex-alpha``)."""
    for module in model.modules():
        if isinstance(module, SquareSoftmin):
            module.scale.fill_(cfg.ss_init)
            if cfg.ss_offset:
                model.fc.bias.fill_(cfg.ss_offset)
        elif isinstance(module, SquareExcitation):
            module.alpha.fill_(cfg.sex_alpha)
    return model


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
    checkpoint.save(out / "last.ckpt")
    if improved:
        copy_atomically(out / "last.ckpt", out / "best.ckpt")
    write_metrics(out / "metrics.csv", run.metrics)
    if run.diagnostics is not None:
        run.diagnostics.save(out)


def six_digits(row: dict[str, Any]) -> dict[str, Any]:
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in row.items()}


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
        checkpoint.save(out / name)
    write_metrics(out / "metrics.csv", run.metrics)


def train(config: TrainConfig, *, quiet: bool = False, resume: bool = False, must_match: tuple[str, ...] = ()) -> Path:
    """Train and return the path of ``OUT/model.ckpt``. Raises TrainingError and friends."""
    config.validate()
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
            say(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.4f}, val top-1 {row['val_top1']:.2f}% "
                f"top-5 {row['val_top5']:.2f}%, {row['images_per_s']:.0f} img/s, {row['epoch_s']:.1f} s"
            )
            if ctx.main:
                try:
                    save_epoch(run, ctx, epoch, out)
                except OSError as exc:  # a full disk: one line, and every file written before is intact
                    kept = f"{last_path} (epoch {epoch}) is intact" if epoch and last_path.exists() else "nothing kept"
                    raise TrainingError(
                        f"could not write the checkpoint of epoch {epoch + 1} to {out}: {exc.strerror or exc}; {kept}"
                    ) from exc
            if ctx.world > 1:
                dist.barrier()
        final = out / "model.ckpt"
        if ctx.main:
            result = test_once(run, ctx, out)
            if result["split"]:
                f, b = result["final"], result["best"]
                say(
                    f"test (held out, evaluated once): final model top-1 {f['test_top1']:.2f}% top-5 "
                    f"{f['test_top5']:.2f}%; best.ckpt (epoch {b['epoch']}, chosen on val) top-1 "
                    f"{b['test_top1']:.2f}%"
                )
            else:
                say(f"no test split: {result['note']}")
            try:
                save_test(run, out, result)
            except OSError as exc:
                raise TrainingError(f"could not write the test figures to {out}: {exc.strerror or exc}") from exc
            copy_atomically(last_path, final)
        if ctx.world > 1:
            dist.barrier()
        return final
    finally:
        if ctx.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["CheckpointError", "TrainConfig", "TrainingError", "dsop_loss", "top1_correct", "train"]
