"""The deploy transform: training model -> the graph that ships.

1. strip every DSoP branch (the backbone's route to its logits is untouched);
2. fold Square-Softmin into the last FC: ``W' = sqrt(|s|) W``, ``b' = sqrt(|s|) b``, head
   ``-(W'h + b')^2`` (SPEC.md; the paper's "merge the absolute values into the FC");
3. fuse every BatchNorm into the convolution before it;
4. drop dropout; eval mode.

Each step is checked on the spot against the training model's main head in eval mode.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from deepsquare.train import count_parameters
from deepsquare.train.layers import NegSquare, SquareSoftmin
from deepsquare.train.models import SquareNet

# float32 round-off on logits of moderate size; BN fusion reorders a few products.
DEPLOY_RTOL = 1e-4
DEPLOY_ATOL = 1e-4


class DeployError(RuntimeError):
    """The deploy model does not reproduce the training model; nothing is exported."""


@dataclass
class DeployReport:
    params_training: int = 0
    params_deploy: int = 0
    params_backbone: int = 0
    stripped_branches: list[str] = field(default_factory=list)
    folded_softmin: str | None = None  # "shared" | "per-class"
    fused_batchnorms: int = 0
    removed_dropouts: int = 0
    max_abs_diff: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def fold_square_softmin(model: SquareNet) -> str | None:
    """Fold ``|s|`` into ``fc`` in place; return "shared"/"per-class", or None without SS."""
    if not isinstance(model.softmin, SquareSoftmin):
        return None
    root = model.softmin.scale.detach().abs().sqrt()  # (1,) or (num_classes,)
    with torch.no_grad():
        model.fc.weight.mul_(root[:, None])
        model.fc.bias.mul_(root)
    kind = "per-class" if model.softmin.per_class else "shared"
    model.softmin = NegSquare()
    return kind


def _fuse_pairs_in(module: nn.Module) -> int:
    """Fuse conv->BN pairs among ``module``'s direct children; return how many."""
    fused = 0
    if isinstance(module, nn.Sequential):
        children = list(module._modules.items())
        for (name, conv), (next_name, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[name] = fuse_conv_bn_eval(conv, bn)
                module._modules[next_name] = nn.Identity()
                fused += 1
        return fused
    # ResNet naming: conv1/bn1, conv2/bn2, conv3/bn3 on the same module
    for index in (1, 2, 3):
        conv, bn = getattr(module, f"conv{index}", None), getattr(module, f"bn{index}", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(module, f"conv{index}", fuse_conv_bn_eval(conv, bn))
            setattr(module, f"bn{index}", nn.Identity())
            fused += 1
    return fused


def fuse_batchnorms(model: nn.Module) -> int:
    return sum(_fuse_pairs_in(m) for m in list(model.modules()))


def remove_dropout(model: nn.Module) -> int:
    removed = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(parent, name, nn.Identity())
                removed += 1
    return removed


def deploy_transform(model: SquareNet, check_inputs: Tensor) -> tuple[SquareNet, DeployReport]:
    """A deploy copy of ``model`` (which is left as it is) and what was done to it."""
    reference_model = model.eval()
    with torch.no_grad():
        reference = reference_model(check_inputs)
    report = DeployReport(params_training=count_parameters(model))
    deployed = copy.deepcopy(model).eval()
    report.stripped_branches = list(deployed.dsop.keys()) if deployed.dsop is not None else []
    deployed.strip_dsop()
    report.params_backbone = count_parameters(deployed)
    report.folded_softmin = fold_square_softmin(deployed)
    report.fused_batchnorms = fuse_batchnorms(deployed)
    report.removed_dropouts = remove_dropout(deployed)
    report.params_deploy = count_parameters(deployed)
    with torch.no_grad():
        got = deployed(check_inputs)
    if not torch.isfinite(reference).all():
        raise DeployError("the training model's logits are not finite on the check batch; nothing to export")
    report.max_abs_diff = (got - reference).abs().max().item()
    tolerance = DEPLOY_ATOL + DEPLOY_RTOL * reference.abs().max().item()
    if not report.max_abs_diff <= tolerance:
        raise DeployError(
            f"deploy model differs from the training model by {report.max_abs_diff:.3g} "
            f"(tolerance {tolerance:.3g}); nothing exported"
        )
    return deployed, report
