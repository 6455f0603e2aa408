"""``TrainConfig``: one training run's settings; ``None`` fields take the papers' recipe."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .models import ARCHS
from .spec import DSoPSpec, ModelSpec
from .variants import parse_variant

# Whole-number settings and the values a run can take (seed: what torch.manual_seed accepts).
RANGES = (
    ("epochs", 1, 100_000),
    ("batch_size", 1, 1 << 20),
    ("input_size", 8, 4096),
    ("seed", 0, 2**63 - 1),
    ("dsop_blocks", 0, 64),
    ("dsop_dim", 1, 4096),
    ("dsop_iterations", 1, 100),
)


@dataclass
class TrainConfig:
    arch: str = "shufflenetv2_x0_5"
    variant: str = "gap"
    data: str = "synthetic"
    out: str = "runs/train"
    epochs: int = 5
    batch_size: int = 64
    input_size: int = 32
    lr: float | None = None  # None: 0.4 per 1024 images, the paper's rule
    warmup_epochs: float | None = None  # None: 5 (the paper) or a tenth of a short run
    weight_decay: float | None = None  # None: 1e-4 ResNet / vanilla, 4e-5 ShuffleNetV2
    momentum: float = 0.9
    label_smoothing: float = 0.0
    clip_grad: float = (
        5.0  # global grad-norm clip; 0 disables (not in the paper; docs: guides/training.md, "The recipe")
    )
    clip_unitwise: float = 0.0  # adaptive unit-wise clip ratio (NFNets' AGC, arXiv:2102.06171); 0 disables
    dropout: float = 0.0  # one dropout for every variant: equal regularisation (docs: results/accuracy.md)
    ss_init: float = 1.0  # Square-Softmin's |s| at the start
    ss_lr_scale: float = (
        0.1  # the Square-Softmin scale's lr, times the schedule's (0: kept fixed); docs: results/accuracy.md
    )
    ss_offset: float = 0.0  # the FC bias a Square-Softmin head starts with (run_state.init_square_modules)
    sex_alpha: float = 0.1  # Square-Excitation's alpha at the start (see layers.SquareExcitation)
    diagnostics: bool = False  # OUT/diagnostics.csv, one row per step (train/diagnostics.py)
    stem: str | None = None  # None: "cifar" up to 64 px, "imagenet" above
    ss_per_class: bool = False
    dsop_stages: tuple[str, ...] = ()
    dsop_blocks: int = 1
    dsop_dim: int = 64
    dsop_iterations: int = 5
    dsop_weights: tuple[float, ...] = ()
    seed: int = 0
    device: str = "auto"

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` default filled in from the paper's recipe."""
        c = TrainConfig(**asdict(self))
        c.dsop_stages, c.dsop_weights = tuple(c.dsop_stages), tuple(c.dsop_weights)
        if c.lr is None:
            c.lr = 0.4 * c.batch_size / 1024
        if c.warmup_epochs is None:
            c.warmup_epochs = 5.0 if c.epochs >= 50 else c.epochs / 10
        if c.weight_decay is None:
            c.weight_decay = ARCHS[c.arch].weight_decay if c.arch in ARCHS else 1e-4
        if c.stem is None:
            c.stem = "cifar" if c.input_size <= 64 else "imagenet"
        return c

    def validate(self) -> None:
        """Every setting checked before any data is loaded; the message names the flag."""
        problems = []
        for name, low, high in RANGES:
            value, flag = getattr(self, name), name.replace("_", "-")
            if value < low:
                problems.append(f"--{flag} must be >= {low}, got {value}")
            elif value > high:
                problems.append(f"--{flag} must be in {low}..{high:,}, got {value}")
        for name, value in (
            ("lr", self.lr),
            ("weight_decay", self.weight_decay),
            ("clip_grad", self.clip_grad),
            ("clip_unitwise", self.clip_unitwise),
            ("warmup_epochs", self.warmup_epochs),
        ):
            positive = name == "lr"
            if value is not None and not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
                problems.append(
                    f"--{name.replace('_', '-')} must be a finite number {'> 0' if positive else '>= 0'}, got {value}"
                )
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.dropout < 1:
            problems.append(f"--dropout must be in [0, 1), got {self.dropout}")
        if not (math.isfinite(self.ss_init) and self.ss_init > 0):
            problems.append(f"--ss-init must be a finite number > 0, got {self.ss_init}")
        if not (math.isfinite(self.ss_lr_scale) and self.ss_lr_scale >= 0):
            problems.append(f"--ss-lr-scale must be a finite number >= 0, got {self.ss_lr_scale}")
        if not math.isfinite(self.ss_offset):
            problems.append(f"--ss-offset must be a finite number, got {self.ss_offset}")
        if not (math.isfinite(self.sex_alpha) and self.sex_alpha >= 0):
            problems.append(f"--sex-alpha must be a finite number >= 0, got {self.sex_alpha}")
        if self.arch not in ARCHS:
            problems.append(f"unknown arch {self.arch!r} (--arch); valid: {', '.join(ARCHS)}")
        if problems:
            raise ValueError("; ".join(problems))
        parse_variant(self.variant)  # VariantError names the bad part and the valid names

    def model_spec(self, num_classes: int) -> ModelSpec:
        dsop = None
        if self.dsop_stages:
            dsop = DSoPSpec(
                self.dsop_stages,
                self.dsop_blocks,
                self.dsop_dim,
                self.dsop_iterations,
                0.5,
                self.dsop_weights,
            )
        return ModelSpec(
            arch=self.arch,
            variant=parse_variant(self.variant).name,
            num_classes=num_classes,
            stem=self.stem or "imagenet",
            dropout=self.dropout,
            ss_per_class=self.ss_per_class,
            dsop=dsop,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        config = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})
        if config.dropout is None:  # an older run: dropout None meant 0.2 for DeepSquare variants only
            config.dropout = 0.2 if parse_variant(config.variant).is_deepsquare else 0.0
        if "ss_lr_scale" not in data:  # an older run trained the scale at the schedule's lr (and has 2 groups)
            config.ss_lr_scale = 1.0
        return config
