"""The optimizer side of the training recipe: which parameters decay, the learning-rate schedule, and
unit-wise gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .layers import SquareSoftmin


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
