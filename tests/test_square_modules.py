"""Each DeepSquare equation, checked against a hand computation."""

import pytest
import torch

from deepsquare.train import build_model
from deepsquare.train.layers import (
    EleSquare,
    GeMPooling,
    GlobalAvgPool,
    SquareExcitation,
    SquarePooling,
    SquareSoftmin,
)


def test_square_pooling_is_mean_squared_plus_variance() -> None:
    # eq. 21: G_k = M_k^2 + S_k^2 with the population variance (eq. 23)
    x = torch.randn(4, 7, 5, 6, dtype=torch.float64) * 3 + 1
    g = SquarePooling()(x)
    mean = x.mean(dim=(2, 3))
    var = x.var(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(g, mean**2 + var, rtol=1e-12, atol=1e-12)
    # eq. 20 written out by loops on one element
    assert g[2, 3].item() == pytest.approx(sum(float(v) ** 2 for v in x[2, 3].flatten()) / 30, rel=1e-12)


def test_square_pooling_differs_from_gap_by_the_variance() -> None:
    x = torch.randn(2, 3, 4, 4)
    assert not torch.allclose(SquarePooling()(x), GlobalAvgPool()(x) ** 2)


def test_gem_p2_is_sqrt_of_square_pooling() -> None:
    x = torch.randn(3, 8, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(GeMPooling()(x), SquarePooling()(x).sqrt(), rtol=1e-12, atol=1e-12)
    # and its gradient stays finite on an all-zero map
    z = torch.zeros(1, 2, 3, 3, requires_grad=True)
    GeMPooling()(z).sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("per_class", [False, True])
def test_square_softmin_is_minus_s_x_squared_and_sign_invariant(per_class: bool) -> None:
    ss = SquareSoftmin(5, per_class=per_class)
    with torch.no_grad():
        ss.scale.copy_(torch.linspace(-2.0, 3.0, ss.scale.numel()))  # |s| is what counts
    x = torch.randn(6, 5)
    y = ss(x)
    assert (y <= 0).all()
    torch.testing.assert_close(y, -ss.scale.abs() * x**2)
    signs = torch.randint(0, 2, x.shape) * 2 - 1
    torch.testing.assert_close(ss(x * signs), y)


def test_square_excitation_matches_eq_25_by_hand() -> None:
    sex = SquareExcitation().double()
    with torch.no_grad():
        sex.alpha.fill_(0.7)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    scale = sex.scale(x).squeeze(-1).squeeze(-1)
    for n in range(2):
        for k in range(3):
            g = sum(float(v) ** 2 for v in x[n, k].flatten()) / 16
            assert scale[n, k].item() == pytest.approx(g / (g + 0.49), rel=1e-10)
    torch.testing.assert_close(sex(x), x * scale[:, :, None, None])
    assert ((scale >= 0) & (scale < 1)).all()
    # No exponential: the scale of a zero channel is exactly 0, not sigmoid(0) = 0.5.
    assert sex.scale(torch.zeros(1, 1, 2, 2, dtype=torch.float64)).item() == 0.0


def test_square_excitation_scale_stays_below_one_for_large_inputs() -> None:
    sex = SquareExcitation().double()  # alpha = 0.1
    scale = sex.scale(torch.full((1, 2, 3, 3), 1e3, dtype=torch.float64))
    assert ((scale >= 0) & (scale < 1)).all()
    # float32 cannot hold 1 - 1e-8: there the bound is reached, never passed
    scale32 = SquareExcitation().scale(torch.full((1, 2, 3, 3), 1e3))
    assert ((scale32 >= 0) & (scale32 <= 1)).all()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "shufflenetv2_x0_5"])
def test_square_encoding_squares_exactly_the_last_spatial_convs_input(arch: str) -> None:
    # Training mode: BN normalizes by batch statistics. In eval mode at initialization
    # (running var 1) the 16 squares of ResNet-50 compound past float32's range.
    model = build_model(arch, "sen", num_classes=10, stem="cifar").train()
    seen: list[tuple[str, torch.Tensor]] = []
    pairs = []
    for block in model.modules():
        if hasattr(block, "branch2"):  # ShuffleNetV2 unit: BN before the ReLU+square, then the dw 3x3
            pairs.append((block.branch2[1], block.branch2[3]))
        elif hasattr(block, "encode"):  # ResNet block: bn1 (then ReLU, then square) feeds conv2
            pairs.append((block.bn1, block.conv2))
    assert pairs and all(isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (3, 3) for _, conv in pairs)
    for bn, conv in pairs:
        bn.register_forward_hook(lambda m, i, o: seen.append(("bn", o.clone())))
        conv.register_forward_pre_hook(lambda m, i: seen.append(("conv", i[0].clone())))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    outs = [t for kind, t in seen if kind == "bn"]
    ins = [t for kind, t in seen if kind == "conv"]
    assert len(outs) == len(ins) == len(pairs)
    for bn_out, conv_in in zip(outs, ins, strict=True):
        torch.testing.assert_close(conv_in, torch.relu(bn_out) ** 2, rtol=0, atol=0)
    # and nothing else in the model squares: one EleSquare per block
    assert sum(isinstance(m, EleSquare) for m in model.modules()) == len(pairs)


@pytest.mark.parametrize(
    ("positions", "squares"),
    [((), 0), ((3,), 1), ((1, 2, 3, 4, 5), 5)],
)
def test_vanilla_cnn_elesquare_positions(positions: tuple[int, ...], squares: int) -> None:
    model = build_model("vanilla_cnn", num_classes=10, elesquare_after=positions)
    assert sum(isinstance(m, EleSquare) for m in model.modules()) == squares


def test_vanilla_deepsquare3_equals_square_pooling() -> None:
    # Table 2's DeepSquare3 (EleSquare between layer 3 and GAP) is Square-Pooling.
    ds3 = build_model("vanilla_cnn", num_classes=10, elesquare_after=(3,)).eval()
    sp = build_model("vanilla_cnn", "sp", num_classes=10).eval()
    sp.load_state_dict(ds3.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ds3(x), sp(x))


def test_stem_max_pool_pads_with_zeros_for_tflite_and_equals_pytorch_on_relu_output() -> None:
    """Zero padding gives PyTorch's -inf-padded maxima exactly when the input is never negative (a ReLU's output)."""
    from deepsquare.train.layers import StemMaxPool

    pool = StemMaxPool(3, stride=2, padding=1)
    x = torch.randn(2, 4, 9, 10)
    reference = torch.nn.MaxPool2d(3, stride=2, padding=1)
    pool.use_format("tflite")
    assert torch.equal(pool(x.relu()), reference(x.relu()))
    assert not torch.equal(pool(-x.abs() - 1), reference(-x.abs() - 1))  # why it is for the stem only: 0 wins there
    pool.use_format("onnx")
    assert torch.equal(pool(-x.abs() - 1), reference(-x.abs() - 1))
