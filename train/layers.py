"""The DeepSquare modules and their baselines, one small layer each.

DeepSquare: "DeepSquare: Boosting the Learning Power of Deep Convolutional Neural Networks with
Elementwise Square Operators" (arXiv:1906.04979), sections 3-4; SE: "Squeeze-and-Excitation
Networks" (arXiv:1709.01507) and "Variations of Squeeze and Excitation networks" (arXiv:2304.06502).

Every layer here is plain tensor arithmetic, so that the deploy graph exports to ONNX,
Core ML and TFLite without custom ops.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EleSquare(nn.Module):
    """``t -> t^2`` elementwise (eq. 14)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * x


# The poolings reduce with keepdim=True, then flatten: an NHWC converter (TFLite) maps that
# straight onto its MEAN, where a rank-dropping mean made it insert a layout TRANSPOSE.


class GlobalAvgPool(nn.Module):
    """GAP: ``(N, C, H, W) -> (N, C)``, the first-order baseline."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3), keepdim=True).flatten(1)


class SquarePooling(nn.Module):
    """Square-Pooling (eq. 20): ``G[n, k] = mean_ij F[n, k, i, j]^2``; no parameters."""

    def forward(self, x: Tensor) -> Tensor:
        return (x * x).mean(dim=(2, 3), keepdim=True).flatten(1)


class GeMPooling(nn.Module):
    """Generalized-mean pooling with p = 2, i.e. ``sqrt(SP)``: the paper's comparison.

    The clamp keeps the square root's gradient finite on an all-zero channel.
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return (x * x).mean(dim=(2, 3), keepdim=True).flatten(1).clamp_min(self.eps).sqrt()


class SquareSoftmin(nn.Module):
    """Square-Softmin (eq. 24): ``y_k = -s_k * x_k^2`` with learnable ``s_k >= 0``.

    ``s`` is stored unconstrained and used as ``|s|`` (the paper folds "the absolute values
    of the scaling factors" into the FC). One shared scalar by default, as the paper trains.
    """

    def __init__(self, num_classes: int, per_class: bool = False, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((num_classes if per_class else 1,), float(init)))

    @property
    def per_class(self) -> bool:
        return self.scale.numel() > 1

    def forward(self, x: Tensor) -> Tensor:
        return -self.scale.abs() * (x * x)

    @torch.no_grad()
    def fold_into(self, fc: nn.Linear) -> NegSquare:
        """The deploy form: ``|s| (W h + b)^2 = (sqrt|s| W h + sqrt|s| b)^2``, so ``W' = sqrt|s| W``,
        ``b' = sqrt|s| b`` (in place) and the head becomes ``-(W' h + b')^2``: the scale op disappears."""
        root = self.scale.detach().abs().sqrt()  # (1,) or (num_classes,)
        fc.weight.mul_(root[:, None])
        if fc.bias is not None:
            fc.bias.mul_(root)
        return NegSquare()


class NegSquare(nn.Module):
    """``y = -x^2``: what a Square-Softmin becomes once its scales are folded into the FC."""

    by_multiply = False  # -1 as a multiplication: Core ML's MLProgram EP in ONNX Runtime has no Neg (``--to ort``)

    def use_format(self, fmt: str) -> None:
        self.by_multiply = fmt == "ort"

    def forward(self, x: Tensor) -> Tensor:
        if self.by_multiply:
            return (x * x) * -1.0  # the same bits as the negation
        return -(x * x)


class SquareExcitation(nn.Module):
    """Square-Excitation (eq. 25): ``s_k = G_k / (G_k + alpha^2)`` with ``G = SP(F)``.

    One learnable ``alpha`` shared by all channels, no exponentials. ``alpha`` starts at 0.1
    so the module begins near identity (``s ~ 1`` wherever ``G >> 0.01``): with alpha = 1 the
    gate is nearly quadratic on weak channels, the next BN re-amplifies them, and a
    Square-Pooling head behind it sees heavy-tailed features that stall training (measured on
    ShuffleNetV2 x0.5: pooled features up to 47 instead of 6). ``eps`` only guards
    the 0/0 of an all-zero channel when ``alpha`` is 0; it is below float32 resolution
    for any other input.
    """

    def __init__(self, alpha: float = 0.1, eps: float = 1e-12) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor([float(alpha)]))
        self.eps = eps

    def scale(self, x: Tensor) -> Tensor:
        g = (x * x).mean(dim=(2, 3), keepdim=True)
        # alpha^2 shaped (1, 1, 1, 1) like g: a (1,)-shaped broadcast made TFLite's NHWC
        # lowering add layout transposes after the block.
        return g / (g + (self.alpha * self.alpha).view(1, 1, 1, 1) + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale(x)


class SqueezeExcitation(nn.Module):
    """SE (Hu et al.) and its variants: GAP -> 1x1 convs with ReLU between -> sigmoid -> scale.

    ``widths`` are the hidden widths: ``(C//r,)`` is the classic SE; the variants of
    "Variations of Squeeze and Excitation networks" (arXiv:2304.06502) only change this tuple (see
    :func:`se_hidden_widths`).
    """

    def __init__(self, channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for width in widths:
            layers += [nn.Conv2d(c_in, width, 1), nn.ReLU(inplace=True)]
            c_in = width
        layers += [nn.Conv2d(c_in, channels, 1), nn.Sigmoid()]
        self.fc = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fc(x.mean(dim=(2, 3), keepdim=True))


def se_hidden_widths(kind: str, channels: int, reduction: int = 16) -> tuple[int, ...]:
    """Hidden widths of the SE family; a width never drops below 1 channel.

    - ``se``: C -> C/r -> C
    - ``se_slow_squeeze``: C -> 2C/r -> C/r -> C (the squeeze in two steps)
    - ``se_slow_excite``: C -> C/r -> 2C/r -> C (the excitation in two steps)
    - ``se_slow_both``: C -> 2C/r -> C/r -> 2C/r -> C
    - ``se_bump``: C -> C/r -> C/r -> C (a C/r -> C/r layer in the middle)
    """
    squeezed = max(1, channels // reduction)
    half = max(1, 2 * channels // reduction)
    table = {
        "se": (squeezed,),
        "se_slow_squeeze": (half, squeezed),
        "se_slow_excite": (squeezed, half),
        "se_slow_both": (half, squeezed, half),
        "se_bump": (squeezed, squeezed),
    }
    if kind not in table:
        raise ValueError(f"unknown SE kind {kind!r}; valid: {', '.join(table)}")
    return table[kind]


class StemMaxPool(nn.MaxPool2d):
    """The stem's max pool (ResNet, ShuffleNetV2), whose input is a ReLU's output, so never negative. PyTorch pads
    with -inf; on non-negative input zero padding gives the same maxima, and for TFLite (``use_format``) the pad is
    written out as zeros: litert-torch lowers it to PAD, which XNNPACK takes, where the -inf pad became PADV2, left
    outside XNNPACK (a partition break at the stem)."""

    zero_pad = False

    def use_format(self, fmt: str) -> None:
        self.zero_pad = fmt == "tflite"

    def forward(self, x: Tensor) -> Tensor:
        if not self.zero_pad:
            return super().forward(x)
        pad = self.padding if isinstance(self.padding, int) else self.padding[0]
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
        return nn.functional.max_pool2d(padded, self.kernel_size, self.stride, 0, self.dilation, self.ceil_mode)
