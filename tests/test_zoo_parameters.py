"""The zoo's plain models are torchvision's, key for key; each module adds what its paper says."""

import itertools

import pytest
import torch

from deepsquare.train import build_model, count_parameters
from deepsquare.train.layers import SquareExcitation, SqueezeExcitation
from deepsquare.train.zoo_table import TORCHVISION_COUNTS

# Main-branch widths that carry a SEx/SE module, block by block (independent of the code).
RESNET_BLOCK_WIDTHS = {
    "resnet18": [64] * 2 + [128] * 2 + [256] * 2 + [512] * 2,
    "resnet34": [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3,
    "resnet50": [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3,
}
SHUFFLE_STAGES = {
    "shufflenetv2_x0_5": (48, 96, 192),
    "shufflenetv2_x1_0": (116, 232, 464),
    "shufflenetv2_x1_5": (176, 352, 704),
    "shufflenetv2_x2_0": (244, 488, 976),
}


def attention_widths(arch: str) -> list[int]:
    if arch in RESNET_BLOCK_WIDTHS:
        return RESNET_BLOCK_WIDTHS[arch]
    # ShuffleNetV2 units act on half the stage width; 4, 8 and 4 units per stage.
    return [w // 2 for w, n in zip(SHUFFLE_STAGES[arch], (4, 8, 4), strict=True) for _ in range(n)]


def se_params(c: int, hidden: list[int]) -> int:
    widths = [c, *hidden, c]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


@pytest.mark.parametrize("arch", TORCHVISION_COUNTS)
def test_plain_model_has_torchvision_parameter_count(arch: str) -> None:
    assert count_parameters(build_model(arch)) == TORCHVISION_COUNTS[arch]


@pytest.mark.parametrize("arch", TORCHVISION_COUNTS)
def test_state_dict_keys_and_shapes_are_torchvision(arch: str, torchvision_keys: dict) -> None:
    recorded = torchvision_keys[arch]
    assert recorded["num_parameters"] == TORCHVISION_COUNTS[arch]
    model = build_model(arch)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == recorded["state_dict"]
    # A torchvision-shaped state dict (random values) loads strictly and lands where it should.
    foreign = {k: torch.randn(shape) if shape else torch.tensor(7) for k, shape in recorded["state_dict"].items()}
    model.load_state_dict(foreign, strict=True)
    assert torch.equal(model.fc.weight, foreign["fc.weight"])


@pytest.mark.parametrize("arch", TORCHVISION_COUNTS)
def test_pooling_variants_add_no_parameters(arch: str) -> None:
    base = TORCHVISION_COUNTS[arch]
    assert count_parameters(build_model(arch, "sp")) == base
    assert count_parameters(build_model(arch, "gem")) == base


@pytest.mark.parametrize("arch", ["resnet18", "shufflenetv2_x0_5", "vanilla_cnn"])
def test_square_softmin_adds_one_shared_or_num_classes(arch: str) -> None:
    base = count_parameters(build_model(arch, num_classes=37))
    assert count_parameters(build_model(arch, "ss", num_classes=37)) == base + 1
    assert count_parameters(build_model(arch, "ss", num_classes=37, ss_per_class=True)) == base + 37


@pytest.mark.parametrize("arch", TORCHVISION_COUNTS)
def test_square_excitation_adds_one_parameter_per_module(arch: str) -> None:
    model = build_model(arch, "sex")
    modules = [m for m in model.modules() if isinstance(m, SquareExcitation)]
    assert len(modules) == len(attention_widths(arch)) == (8 if arch == "resnet18" else 16)
    assert count_parameters(model) == TORCHVISION_COUNTS[arch] + len(modules)


@pytest.mark.parametrize("arch", TORCHVISION_COUNTS)
@pytest.mark.parametrize(
    ("variant", "hidden"),
    [
        ("se", lambda c: [c // 16]),
        ("se_slow_squeeze", lambda c: [2 * c // 16, c // 16]),
        ("se_slow_excite", lambda c: [c // 16, 2 * c // 16]),
        ("se_slow_both", lambda c: [2 * c // 16, c // 16, 2 * c // 16]),
        ("se_bump", lambda c: [c // 16, c // 16]),
    ],
)
def test_se_family_adds_what_the_formula_says(arch: str, variant: str, hidden) -> None:
    widths = attention_widths(arch)
    expected = sum(se_params(c, [max(1, h) for h in hidden(c)]) for c in widths)
    model = build_model(arch, variant)
    assert sum(isinstance(m, SqueezeExcitation) for m in model.modules()) == len(widths)
    assert count_parameters(model) - TORCHVISION_COUNTS[arch] == expected


def test_square_encoding_adds_no_parameters_and_keeps_keys() -> None:
    for arch in ("resnet18", "resnet50", "shufflenetv2_x0_5"):
        plain, encoded = build_model(arch), build_model(arch, "sen")
        assert plain.state_dict().keys() == encoded.state_dict().keys()


def test_vanilla_cnn_is_table_1() -> None:
    model = build_model("vanilla_cnn", num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (3, 3), (2, 2)),
        (32, 64, (3, 3), (2, 2)),
        (64, 128, (3, 3), (2, 2)),
    ]
    # 3 convs without bias + 3 BNs + FC(128, 10)
    expected = 3 * 3 * 3 * 32 + 9 * 32 * 64 + 9 * 64 * 128 + 2 * (32 + 64 + 128) + 128 * 10 + 10
    assert count_parameters(model) == expected


def test_channel_shuffle_is_torchvisions_permutation() -> None:
    from deepsquare.train.models.shufflenetv2 import channel_shuffle

    x = torch.randn(2, 12, 3, 3)
    torchvision_way = x.view(2, 2, 6, 3, 3).transpose(1, 2).reshape(2, 12, 3, 3)
    assert torch.equal(channel_shuffle(x, 2), torchvision_way)
