"""What a training run carries from epoch to epoch (:class:`Run`), and how a run starts: a new one (model
built, square modules initialised) or one resumed from its ``last.ckpt`` (refused when the settings the user
gave differ from the run's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import Checkpoint
from .config import TrainConfig
from .data import DataBundle, load_data
from .diagnostics import Diagnostics
from .distributed import Dist, TrainingError
from .layers import SquareExcitation, SquareSoftmin
from .models import SquareNet, build_from_spec
from .optim import param_groups
from .spec import ModelSpec


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
