"""The paper's vanilla CNN test bed (DeepSquare, arXiv:1906.04979, Table 1) with EleSquare positions of Table 2.

Layers 1-3 are conv3x3 stride 2 (32/64/128 channels) + BN + ReLU, layer 4 the pooling,
layer 5 the FC. ``elesquare_after=(k, ...)`` puts an EleSquare after layer k: Table 2's
position ``k_(k+1)``; 5 is its ``5_`` (DeepSquare5+). DeepSquare3 (position 3_4) is
Square-Pooling, and DeepSquare5s- is Square-Softmin: the ``sp`` and ``ss`` variants.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import EleSquare
from ..spec import ModelSpec
from .base import SquareNet

WIDTHS = (32, 64, 128)
POSITIONS = (1, 2, 3, 4, 5)


def conv_bn_relu(c_in: int, c_out: int, stride: int, square: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if square:
        layers.append(EleSquare())
    return nn.Sequential(*layers)


class VanillaCNN(SquareNet):
    stage_names = ("layer1", "layer2", "layer3")

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        after = set(spec.elesquare_after)
        c_in = 3
        for i, (name, width) in enumerate(zip(self.stage_names, WIDTHS, strict=True), start=1):
            setattr(self, name, conv_bn_relu(c_in, width, 2, square=i in after))
            c_in = width
        self.stage_channels = dict(zip(self.stage_names, WIDTHS, strict=True))
        self.build_head(WIDTHS[-1])
        self.square_pooled: nn.Module = EleSquare() if 4 in after else nn.Identity()
        self.square_fc: nn.Module = EleSquare() if 5 in after else nn.Identity()

    def forward_stem(self, x: Tensor) -> Tensor:
        return x

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.square_pooled(self.pool(x))
        return self.softmin(self.square_fc(self.fc(self.dropout(x))))

    def make_branch_blocks(self, stage: str, count: int) -> nn.Module:
        channels = self.stage_channels[stage]
        return nn.Sequential(*(conv_bn_relu(channels, channels, 1) for _ in range(count)))
