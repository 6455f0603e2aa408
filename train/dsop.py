"""Detachable second-order pooling (DSoP) training branches ("Detachable Second-order Pooling: Towards High Performance
First-order Networks", arXiv:2006.00809, sec. III-A)."""

from __future__ import annotations

from torch import Tensor, nn

from .isqrt import isqrt_cov_pool


class DSoPBranch(nn.Module):
    """blocks -> 1x1 conv + BN + ReLU to ``dim`` -> iSQRT-COV -> triu -> dropout -> FC."""

    def __init__(
        self,
        blocks: nn.Module,
        in_channels: int,
        dim: int,
        num_classes: int,
        iterations: int = 5,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.blocks = blocks
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, dim, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True)
        )
        self.iterations = iterations
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim * (dim + 1) // 2, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(self.blocks(x))
        return self.fc(self.dropout(isqrt_cov_pool(x, self.iterations)))
