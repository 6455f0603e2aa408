"""ResNet-18/34/50 (He et al.) with DeepSquare modules; torchvision's layout and key names."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from torch import Tensor, nn

from ..layers import StemMaxPool
from ..spec import ModelSpec
from .base import ConvBNPair, SquareNet

AttentionLayer = Callable[[int], nn.Module]  # channels -> the per-block attention (SE, SEx)
EncodingLayer = Callable[[], nn.Module]  # Square-Encoding's EleSquare


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """3x3 -> 3x3. SEn squares the input of the second 3x3; attention acts before the add."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        attention_layer: AttentionLayer | None = None,
        encoding_layer: EncodingLayer | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.encode = encoding_layer() if encoding_layer else nn.Identity()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attention = attention_layer(planes) if attention_layer else nn.Identity()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.encode(out)))
        return self.relu(self.attention(out) + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here, as torchvision's v1.5) -> 1x1; SEn squares the 3x3's input."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        attention_layer: AttentionLayer | None = None,
        encoding_layer: EncodingLayer | None = None,
    ) -> None:
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.encode = encoding_layer() if encoding_layer else nn.Identity()
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.attention = attention_layer(planes * self.expansion) if attention_layer else nn.Identity()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(self.encode(out))))
        out = self.bn3(self.conv3(out))
        return self.relu(self.attention(out) + identity)


RESNET_LAYOUTS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(SquareNet):
    stage_names = ("layer1", "layer2", "layer3", "layer4")

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        block, layers = RESNET_LAYOUTS[spec.arch]
        self.block = block
        variant = spec.parsed_variant
        self.block_options = {
            "attention_layer": variant.attention_layer(spec.se_reduction),
            "encoding_layer": variant.encoding_layer(),
        }
        self.inplanes = 64
        if spec.stem == "cifar":  # small inputs: keep the resolution
            self.conv1 = conv3x3(3, 64)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = StemMaxPool(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.stage_channels = {f"layer{i + 1}": w * block.expansion for i, w in enumerate((64, 128, 256, 512))}
        self.build_head(512 * block.expansion)
        self._init_weights()

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * self.block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * self.block.expansion, stride),
                nn.BatchNorm2d(planes * self.block.expansion),
            )
        layers = [self.block(self.inplanes, planes, stride, downsample, **self.block_options)]
        self.inplanes = planes * self.block.expansion
        layers += [self.block(self.inplanes, planes, **self.block_options) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def conv_bn_pairs(self) -> Iterator[ConvBNPair]:
        yield from super().conv_bn_pairs()  # the downsample shortcuts
        yield self, "conv1", "bn1"
        for block in self.modules():
            if isinstance(block, BasicBlock | Bottleneck):
                yield from ((block, f"conv{i}", f"bn{i}") for i in (1, 2, 3) if hasattr(block, f"conv{i}"))

    def make_branch_blocks(self, stage: str, count: int) -> nn.Module:
        # Plain blocks of the backbone's kind at the stage's width and resolution.
        channels = self.stage_channels[stage]
        planes = channels // self.block.expansion
        return nn.Sequential(*(self.block(channels, planes) for _ in range(count)))
