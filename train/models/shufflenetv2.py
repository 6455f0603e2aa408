"""ShuffleNetV2 (Ma et al.) with DeepSquare modules; torchvision's layout and key names."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..layers import StemMaxPool
from ..spec import ModelSpec
from .base import SquareNet

STAGE_REPEATS = (4, 8, 4)
STAGE_OUT_CHANNELS: dict[str, tuple[int, int, int, int, int]] = {
    "shufflenetv2_x0_5": (24, 48, 96, 192, 1024),
    "shufflenetv2_x1_0": (24, 116, 232, 464, 1024),
    "shufflenetv2_x1_5": (24, 176, 352, 704, 1024),
    "shufflenetv2_x2_0": (24, 244, 488, 976, 2048),
}


def shuffle_order(channels: int, groups: int, device: torch.device | None = None) -> Tensor:
    """The permutation of torchvision's reshape-transpose-reshape, as channel indices."""
    return torch.arange(channels, device=device).view(groups, channels // groups).t().reshape(-1)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """One gather on the channel axis. For TFLite this is the fastest form measured (155 ops instead of
    187 for x0.5; its NHWC lowering wraps each gather in layout transposes, which cost less than the
    alternatives). The batch axis stays free for dynamic-batch export."""
    return x[:, shuffle_order(x.shape[1], groups, x.device)]


def channel_shuffle_index_select(x: Tensor, groups: int) -> Tensor:
    """The same permutation as ``index_select``: the ONNX exporter emits a single Gather for it, where
    ``x[:, order]`` became Transpose -> GatherND -> Transpose (measured in ONNX Runtime: 0.88x the time)."""
    return torch.index_select(x, 1, shuffle_order(x.shape[1], groups, x.device))


def channel_shuffle_transpose(x: Tensor, groups: int) -> Tensor:
    """The same permutation as torchvision's reshape-transpose-reshape: for a fixed-shape mobile graph (``--to ort``)
    it is Reshape -> Transpose -> Reshape, which NNAPI and Core ML's MLProgram take, where a gather splits their
    graph at every unit (ONNX Runtime's mobile usability checker: NNAPI 17 partitions with GatherND, 1 with this)."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


# The channel shuffle of each export format's deploy form (same numbers, bit for bit). ExecuTorch and TFLite: XNNPACK
# takes the reshape-transpose-reshape, where the gather stayed outside and split the graph at every unit. Measured at
# 224 px, one thread, x0.5: ExecuTorch fp32 the same time, int8 0.90x; LiteRT 18 -> 2 partitions, fp32 0.984
# (0.961-1.008) and int8 0.989 (0.968-1.011) the time of the gather form.
SHUFFLE_FOR_FORMAT = {
    "onnx": channel_shuffle_index_select,
    "ort": channel_shuffle_transpose,
    "executorch": channel_shuffle_transpose,
    "tflite": channel_shuffle_transpose,
}


def channel_halves(x: Tensor) -> tuple[Tensor, Tensor]:
    """A stride-1 unit's two halves of the channels (one Split in ONNX and TFLite)."""
    x1, x2 = x.chunk(2, dim=1)
    return x1, x2


def channel_halves_sliced(x: Tensor) -> tuple[Tensor, Tensor]:
    """The same halves as two slices: ExecuTorch's XNNPACK partitioner takes ``slice_copy`` where it left
    ``split_with_sizes_copy`` outside, splitting the graph at every stride-1 unit."""
    half = x.shape[1] // 2
    return x[:, :half], x[:, half:]


# The channel split of each export format's deploy form (same numbers). ExecuTorch: measured at 224 px, one thread,
# x0.5: 14 -> 1 XNNPACK partition, int8 0.874 (0.795-0.961) and fp32 0.949 (0.871-1.034) the time of the split.
HALVES_FOR_FORMAT = {"executorch": channel_halves_sliced}


def depthwise_conv(channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False, groups=channels)


class InvertedResidual(nn.Module):
    """The ShuffleNetV2 unit. ``branch2`` is the main branch: SEn squares the input of its
    3x3 depthwise conv (index 2 becomes ReLU then EleSquare, so no key moves), and the
    attention acts on its output before the concatenation."""

    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        attention_layer: Callable[[int], nn.Module] | None = None,
        encoding_layer: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.stride = stride
        branch_features = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                depthwise_conv(inp, stride),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch_features, 1, bias=False),
                nn.BatchNorm2d(branch_features),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        relu_before_dw: nn.Module = nn.ReLU(inplace=True)
        if encoding_layer:
            relu_before_dw = nn.Sequential(nn.ReLU(inplace=True), encoding_layer())
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch_features, branch_features, 1, bias=False),
            nn.BatchNorm2d(branch_features),
            relu_before_dw,
            depthwise_conv(branch_features, stride),
            nn.BatchNorm2d(branch_features),
            nn.Conv2d(branch_features, branch_features, 1, bias=False),
            nn.BatchNorm2d(branch_features),
            nn.ReLU(inplace=True),
        )
        self.attention = attention_layer(branch_features) if attention_layer else nn.Identity()
        self.shuffle = channel_shuffle
        self.halves = channel_halves

    def use_format(self, fmt: str) -> None:
        self.shuffle = SHUFFLE_FOR_FORMAT.get(fmt, channel_shuffle)
        self.halves = HALVES_FOR_FORMAT.get(fmt, channel_halves)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = self.halves(x)
            out = torch.cat((x1, self.attention(self.branch2(x2))), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.attention(self.branch2(x))), dim=1)
        return self.shuffle(out, 2)


class ShuffleNetV2(SquareNet):
    stage_names = ("stage2", "stage3", "stage4")

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        widths = STAGE_OUT_CHANNELS[spec.arch]
        variant = spec.parsed_variant
        self.unit_options = {
            "attention_layer": variant.attention_layer(spec.se_reduction),
            "encoding_layer": variant.encoding_layer(),
        }
        stem_stride = 1 if spec.stem == "cifar" else 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.maxpool: nn.Module = nn.Identity() if spec.stem == "cifar" else StemMaxPool(3, 2, 1)
        c_in = widths[0]
        for name, repeats, c_out in zip(self.stage_names, STAGE_REPEATS, widths[1:4], strict=True):
            units = [InvertedResidual(c_in, c_out, 2, **self.unit_options)]
            units += [InvertedResidual(c_out, c_out, 1, **self.unit_options) for _ in range(repeats - 1)]
            setattr(self, name, nn.Sequential(*units))
            c_in = c_out
        self.stage_channels = dict(zip(self.stage_names, widths[1:4], strict=True))
        self.conv5 = nn.Sequential(
            nn.Conv2d(c_in, widths[-1], 1, 1, 0, bias=False),
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(inplace=True),
        )
        self.build_head(widths[-1])

    def forward_stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.conv1(x))

    def forward_tail(self, x: Tensor) -> Tensor:
        return self.conv5(x)

    def make_branch_blocks(self, stage: str, count: int) -> nn.Module:
        channels = self.stage_channels[stage]
        return nn.Sequential(*(InvertedResidual(channels, channels, 1) for _ in range(count)))
