"""Every arch x every single variant x {with, without} DSoP runs forward and backward."""

import pickle

import pytest
import torch

from deepsquare.train import ARCHS, VALID_NAMES, build_model
from deepsquare.train.models.resnet import RESNET_LAYOUTS
from deepsquare.train.models.shufflenetv2 import STAGE_OUT_CHANNELS

BLOCK_VARIANTS = {"sex", "sen", "se", "se_slow_squeeze", "se_slow_excite", "se_slow_both", "se_bump"}
COMBINED = ["sp+ss+sex", "sp+sex", "sp+ss+sen"]
DSOP = {
    **{a: {"stages": ("layer3", "layer4"), "dim": 16} for a in RESNET_LAYOUTS},
    **{a: {"stages": ("stage3", "stage4"), "dim": 16} for a in STAGE_OUT_CHANNELS},
    "vanilla_cnn": {"stages": ("layer2", "layer3"), "dim": 16},
}


def cases(archs):
    for arch in archs:
        for variant in [*VALID_NAMES, *COMBINED]:
            if arch == "vanilla_cnn" and any(n in BLOCK_VARIANTS for n in variant.split("+")):
                continue  # refused by design, tested in test_model_config
            for with_dsop in (False, True):
                yield pytest.param(arch, variant, with_dsop, id=f"{arch}-{variant}-{'dsop' if with_dsop else 'plain'}")


def run_step(arch: str, variant: str, with_dsop: bool, size: int, stem: str) -> None:
    model = build_model(
        arch, variant, num_classes=10, stem=stem, dropout=0.2, dsop=DSOP[arch] if with_dsop else None
    ).train()
    out = model(torch.randn(2, 3, size, size))
    logits, branches = out if with_dsop else (out, [])
    assert logits.shape == (2, 10) and len(branches) == (2 if with_dsop else 0)
    loss = sum(torch.nn.functional.cross_entropy(o, torch.tensor([1, 7])) for o in [logits, *branches])
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("arch", "variant", "with_dsop"), list(cases(ARCHS)))
def test_forward_backward_32px_cifar_stem(arch: str, variant: str, with_dsop: bool) -> None:
    run_step(arch, variant, with_dsop, 32, "cifar")


@pytest.mark.parametrize(("arch", "variant", "with_dsop"), list(cases(["resnet18", "shufflenetv2_x0_5"])))
def test_forward_backward_224px_imagenet_stem(arch: str, variant: str, with_dsop: bool) -> None:
    run_step(arch, variant, with_dsop, 224, "imagenet")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "variant", "with_dsop"),
    list(cases(["resnet34", "resnet50", "shufflenetv2_x1_0", "shufflenetv2_x1_5", "shufflenetv2_x2_0"])),
)
def test_forward_backward_224px_larger_archs(arch: str, variant: str, with_dsop: bool) -> None:
    run_step(arch, variant, with_dsop, 224, "imagenet")


SMALL_ARCHS = ["vanilla_cnn", "resnet18", "shufflenetv2_x0_5"]


@pytest.mark.parametrize(("arch", "variant", "with_dsop"), list(cases(SMALL_ARCHS)))
def test_every_model_pickles_to_the_same_function(arch: str, variant: str, with_dsop: bool) -> None:
    # The parallel export pickles the deploy model to a spawned worker: a lambda kept by a model broke it once.
    model = build_model(arch, variant, num_classes=10, stem="cifar", dsop=DSOP[arch] if with_dsop else None).eval()
    clone = pickle.loads(pickle.dumps(model))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out, again = model(x), clone(x)
    assert all(
        torch.equal(a, b)
        for a, b in zip(torch.utils._pytree.tree_leaves(out), torch.utils._pytree.tree_leaves(again), strict=True)
    )
