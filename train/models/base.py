"""What every deepsquare classifier shares: the pooling/FC/Square-Softmin head, DSoP taps, and the
deploy form (BatchNorm pairs fused, the Square-Softmin scale folded into the FC)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from dataclasses import replace

from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..dsop import DSoPBranch
from ..layers import SquareSoftmin
from ..spec import DSoPSpec, ModelSpec

ConvBNPair = tuple[nn.Module, str, str]  # (parent, conv attribute, BN attribute)


class SquareNet(nn.Module):
    """Base of the model zoo.

    A subclass builds its layers (with torchvision's attribute names), lists its stages in
    ``stage_names`` with their output widths in ``stage_channels``, and implements
    ``forward_stem``, ``forward_tail`` and ``make_branch_blocks``. In training mode with DSoP
    branches the forward returns ``(logits, [branch_logits, ...])``; otherwise ``logits``.
    The branches only read the stage outputs, so the route from input to ``logits`` is the
    same with or without them.
    """

    stage_names: tuple[str, ...] = ()
    stage_channels: dict[str, int]

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.dsop: nn.ModuleDict | None = None

    def build_head(self, in_features: int) -> None:
        variant = self.spec.parsed_variant
        self.pool = variant.pool_layer()
        self.dropout = nn.Dropout(self.spec.dropout) if self.spec.dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, self.spec.num_classes)
        self.softmin = (
            SquareSoftmin(self.spec.num_classes, per_class=self.spec.ss_per_class)
            if variant.square_softmin
            else nn.Identity()
        )

    # subclass hooks -------------------------------------------------------------------
    def forward_stem(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_tail(self, x: Tensor) -> Tensor:
        """Layers between the last stage and the pooling (ShuffleNetV2's conv5)."""
        return x

    def make_branch_blocks(self, stage: str, count: int) -> nn.Module:
        raise NotImplementedError

    # shared ---------------------------------------------------------------------------
    def forward_head(self, x: Tensor) -> Tensor:
        return self.softmin(self.fc(self.dropout(self.pool(x))))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, list[Tensor]]:
        x = self.forward_stem(x)
        taps: dict[str, Tensor] = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            taps[name] = x
        logits = self.forward_head(self.forward_tail(x))
        if self.dsop is not None and self.training:
            return logits, [branch(taps[name]) for name, branch in self.dsop.items()]
        return logits

    def attach_dsop(self, dsop: DSoPSpec) -> None:
        unknown = [s for s in dsop.stages if s not in self.stage_names]
        if unknown:
            raise ValueError(
                f"DSoP stage(s) {', '.join(unknown)} do not exist in {self.spec.arch}; "
                f"its stages are {', '.join(self.stage_names)}"
            )
        # Branches in backbone order, as the paper numbers them (B^1 closest to the input).
        ordered = sorted(dsop.stages, key=self.stage_names.index)
        if list(ordered) != list(dsop.stages):
            raise ValueError(f"DSoP stages must be listed from input to output: {', '.join(ordered)}")
        self.dsop = nn.ModuleDict(
            {
                stage: DSoPBranch(
                    self.make_branch_blocks(stage, dsop.blocks),
                    self.stage_channels[stage],
                    dsop.dim,
                    self.spec.num_classes,
                    dsop.iterations,
                    dsop.dropout,
                )
                for stage in dsop.stages
            }
        )

    # deploy form -----------------------------------------------------------------------
    def conv_bn_pairs(self) -> Iterator[ConvBNPair]:
        """Every Conv2d directly followed by its BatchNorm2d. This default finds the pairs that sit side by
        side in an ``nn.Sequential`` (torchvision's style); a model with named pairs adds them."""
        for parent in self.modules():
            if isinstance(parent, nn.Sequential):
                for (name, conv), (next_name, bn) in itertools.pairwise(parent._modules.items()):
                    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                        yield parent, name, next_name

    def fuse_batchnorms(self) -> int:
        """Fold each BN of :meth:`conv_bn_pairs` into its conv (eval statistics); return how many."""
        pairs = list(self.conv_bn_pairs())
        for parent, conv_name, bn_name in pairs:
            fused = fuse_conv_bn_eval(getattr(parent, conv_name), getattr(parent, bn_name))
            setattr(parent, conv_name, fused)
            setattr(parent, bn_name, nn.Identity())
        return len(pairs)

    def for_format(self, fmt: str) -> SquareNet:
        """The deploy form one export format lowers best, on a copy; the same numbers in every form (up to float
        rounding). A layer with per-format forms has ``use_format(fmt)``: ShuffleNetV2's channel shuffle
        (``SHUFFLE_FOR_FORMAT``), its channel split (``HALVES_FOR_FORMAT``), the stem's max pool (``StemMaxPool``)."""
        if not any(hasattr(m, "use_format") for m in self.modules()):
            return self
        model = copy.deepcopy(self)
        for module in model.modules():
            if hasattr(module, "use_format"):
                module.use_format(fmt)
        return model

    def fold_square_softmin(self) -> str | None:
        """Fold the Square-Softmin scale into the FC (see :meth:`SquareSoftmin.fold_into`)."""
        if not isinstance(self.softmin, SquareSoftmin):
            return None
        kind = "per-class" if self.softmin.per_class else "shared"
        self.softmin = self.softmin.fold_into(self.fc)
        return kind

    def strip_dsop(self) -> SquareNet:
        """Detach every DSoP branch in place; the backbone's weights are untouched."""
        self.dsop = None
        self.spec = replace(self.spec, dsop=None)
        return self
