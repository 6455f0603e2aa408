"""Accuracy of a model on one split: the per-epoch validation figures, the held-out test figures, and the
per-image hits that paired comparisons of two models use."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from .checkpoint import normalize
from .data import DataBundle, ImageSet
from .distributed import Dist


def nonfinite_images(logits: Tensor) -> int:
    """How many rows (images) of ``logits`` hold a value that is not finite."""
    return int((~torch.isfinite(logits).all(dim=1)).sum())


@torch.no_grad()
def evaluate(
    model: nn.Module, split: ImageSet, data: DataBundle, ctx: Dist, batch_size: int, prefix: str = "val"
) -> dict[str, float]:
    """Main-head loss, top-1 and top-5 on one split (each rank a shard, then summed), keys ``PREFIX_top1``...,
    and ``PREFIX_nonfinite``: the images whose logits are not all finite (EleSquare overflowing in eval mode; the
    loss is then ``nan``, and such a model cannot be exported)."""
    model.eval()
    idx = torch.arange(len(split))[ctx.rank :: ctx.world]
    totals = torch.zeros(5, dtype=torch.float64)  # loss sum, top1, top5, count, non-finite images
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
                nonfinite_images(logits),
            ],
            dtype=torch.float64,
        )
    if ctx.world > 1:
        dist.all_reduce(totals)
    loss, top1, top5, n, nonfinite = totals.tolist()
    return {
        f"{prefix}_loss": loss / max(n, 1),
        f"{prefix}_top1": 100 * top1 / max(n, 1),
        f"{prefix}_top5": 100 * top5 / max(n, 1),
        f"{prefix}_nonfinite": int(nonfinite),
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
