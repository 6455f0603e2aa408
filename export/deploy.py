"""The deploy transform: training model -> the graph that ships.

1. strip every DSoP branch (the backbone's route to its logits is untouched; "Detachable
   Second-order Pooling: Towards High Performance First-order Networks", arXiv:2006.00809);
2. fold Square-Softmin into the last FC: ``W' = sqrt(|s|) W``, ``b' = sqrt(|s|) b``, head
   ``-(W'h + b')^2`` (DeepSquare, arXiv:1906.04979: "merge the absolute values into the FC");
3. fuse every BatchNorm into the convolution before it (the pairs each model declares);
4. drop dropout; eval mode.

Each module owns its deploy form (``SquareSoftmin.fold_into``, ``SquareNet.conv_bn_pairs``); this
file only runs them in order on a copy and checks the result against the training model's main
head in eval mode.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from deepsquare.train import count_parameters
from deepsquare.train.evaluation import nonfinite_images
from deepsquare.train.models import SquareNet

# float32 round-off on logits of moderate size; BN fusion reorders a few products.
DEPLOY_RTOL = 1e-4
DEPLOY_ATOL = 1e-4
# Validation images the deploy model must answer with finite logits: a model whose squares overflow on 1% of its
# inputs is caught with probability 0.994 (the parity check's few samples would let most such models through).
OVERFLOW_CHECK_IMAGES = 512


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


def remove_dropout(model: nn.Module) -> int:
    removed = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(parent, name, nn.Identity())
                removed += 1
    return removed


def deploy_transform(model: SquareNet, check_inputs: Tensor) -> tuple[SquareNet, DeployReport]:
    """A deploy copy of ``model`` and what was done to it. ``model`` is left exactly as it was, its
    train/eval mode included (the reference logits come from an eval-mode copy)."""
    report = DeployReport(params_training=count_parameters(model))
    deployed = copy.deepcopy(model).eval()
    with torch.no_grad():
        reference = deployed(check_inputs)
    report.stripped_branches = list(deployed.dsop.keys()) if deployed.dsop is not None else []
    deployed.strip_dsop()
    report.params_backbone = count_parameters(deployed)
    report.folded_softmin = deployed.fold_square_softmin()
    report.fused_batchnorms = deployed.fuse_batchnorms()
    report.removed_dropouts = remove_dropout(deployed)
    report.params_deploy = count_parameters(deployed)
    with torch.no_grad():
        got = deployed(check_inputs)
    if not torch.isfinite(reference).all():
        raise overflow_error(nonfinite_images(reference), f"{len(reference)} check images")
    report.max_abs_diff = (got - reference).abs().max().item()
    tolerance = DEPLOY_ATOL + DEPLOY_RTOL * reference.abs().max().item()
    if not report.max_abs_diff <= tolerance:
        raise DeployError(
            f"deploy model differs from the training model by {report.max_abs_diff:.3g} "
            f"(tolerance {tolerance:.3g}); nothing exported"
        )
    return deployed, report


def overflow_error(bad: int, what: str) -> DeployError:
    return DeployError(
        f"the trained model's logits are not finite on {bad} of the {what} in eval mode (EleSquare squaring an "
        "unusual image's activations block after block until they overflow); nothing to export"
    )


@torch.no_grad()
def refuse_overflow(model: nn.Module, images: Tensor, what: str, batch: int = 64) -> None:
    """DeployError when ``model`` (eval mode) gives a non-finite logit for any of ``images`` (normalized NCHW)."""
    bad = sum(nonfinite_images(model(images[i : i + batch])) for i in range(0, len(images), batch))
    if bad:
        raise overflow_error(bad, what)
