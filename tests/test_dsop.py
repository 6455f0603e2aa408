"""DSoP branches: extra outputs while training, nothing at all once detached."""

import pytest
import torch

from deepsquare.train import DSoPSpec, ModelSpec, build_from_spec, build_model, count_parameters

CASES = [
    ("resnet18", ("layer2", "layer3", "layer4")),
    ("resnet50", ("layer4",)),
    ("shufflenetv2_x0_5", ("stage2", "stage3", "stage4")),
    ("vanilla_cnn", ("layer2", "layer3")),
]


@pytest.mark.parametrize(("arch", "stages"), CASES)
def test_training_mode_returns_main_and_branch_logits(arch: str, stages: tuple[str, ...]) -> None:
    model = build_model(arch, "sp", num_classes=7, stem="cifar", dsop=DSoPSpec(stages, dim=16))
    model.train()
    logits, branches = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 7)
    assert [b.shape for b in branches] == [(2, 7)] * len(stages)
    assert list(model.dsop) == list(stages)
    # each branch's FC reads d(d+1)/2 features
    assert all(branch.fc.in_features == 16 * 17 // 2 for branch in model.dsop.values())
    model.eval()
    assert isinstance(model(torch.randn(2, 3, 32, 32)), torch.Tensor)


@pytest.mark.parametrize(("arch", "stages"), CASES)
@pytest.mark.parametrize("variant", ["gap", "sp+ss"])
def test_stripped_model_is_the_backbone_bit_for_bit(arch: str, stages: tuple[str, ...], variant: str) -> None:
    spec = ModelSpec(arch=arch, variant=variant, num_classes=5, stem="cifar", dsop=DSoPSpec(stages, dim=8))
    trained = build_from_spec(spec)
    # a few training steps so that BN statistics and weights move
    optimizer = torch.optim.SGD(trained.parameters(), lr=1e-3)  # small: SP+SS logits are quartic in the features
    for _ in range(2):
        logits, branch_logits = trained(torch.randn(4, 3, 32, 32))
        target = torch.randint(0, 5, (4,))
        loss = sum(torch.nn.functional.cross_entropy(out, target) for out in [logits, *branch_logits])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained.eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        before = trained(x)
        stripped = trained.strip_dsop()
        after = stripped(x)
    assert torch.isfinite(before).all()
    assert torch.equal(before, after)
    assert stripped.spec.dsop is None
    assert not any(k.startswith("dsop.") for k in stripped.state_dict())
    plain = build_model(arch, variant, num_classes=5, stem="cifar")
    assert count_parameters(stripped) == count_parameters(plain)
    plain.load_state_dict(stripped.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), after)


def test_default_branch_weights_follow_the_paper_on_small_data() -> None:
    assert DSoPSpec(("a",)).loss_weights == (0.3,)
    assert DSoPSpec(("a", "b")).loss_weights == (0.2, 0.3)
    assert DSoPSpec(("a", "b", "c")).loss_weights == pytest.approx((0.1, 0.2, 0.3))
    assert DSoPSpec(("a", "b", "c", "d")).loss_weights == pytest.approx((0.1, 0.1, 0.2, 0.3))
    assert DSoPSpec(("a", "b"), loss_weights=(1, 1)).loss_weights == (1.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stages": ()}, "at least one stage"),
        ({"stages": ("layer3", "layer3")}, "repeat"),
        ({"stages": ("layer3",), "loss_weights": (0.1, 0.2)}, "1 stages but 2 loss weights"),
        ({"stages": ("layer3",), "dim": 0}, "dim >= 1"),
        ({"stages": ("layer3",), "dropout": 1.0}, "dropout < 1"),
    ],
)
def test_bad_dsop_specs_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DSoPSpec(**kwargs)


def test_unknown_or_unordered_stage_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"stage2 do not exist in resnet18; its stages are layer1, layer2"):
        build_model("resnet18", dsop=DSoPSpec(("stage2",)))
    with pytest.raises(ValueError, match="from input to output"):
        build_model("resnet18", dsop=DSoPSpec(("layer4", "layer2")))


def test_branch_on_a_1x1_map_stays_finite() -> None:
    # ImageNet stem at 32x32 leaves ShuffleNetV2's stage4 at 1x1: a zero covariance.
    model = build_model("shufflenetv2_x0_5", num_classes=3, dsop={"stages": ("stage4",), "dim": 8}).train()
    logits, (branch,) = model(torch.randn(2, 3, 32, 32))
    (logits.sum() + branch.sum()).backward()
    assert torch.isfinite(branch).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
