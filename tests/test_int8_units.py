"""The unit kinds an int8 export can keep float, the keep-float spec, and its refusals before torch is imported."""

from __future__ import annotations

import pytest
import torch

from deepsquare.export.deploy import deploy_transform
from deepsquare.export.int8_units import (
    DEFAULT_KEEP_FLOAT,
    UNIT_KINDS,
    check_keep_float_spec,
    int8_options_problem,
    int8_units,
    resolve_keep_float,
)
from deepsquare.export.prologue import PixelPrologue
from deepsquare.export.request import ExportError
from deepsquare.runtime.formats import FORMATS
from deepsquare.train import build_model


def deployed(arch: str, variant: str) -> torch.nn.Module:
    model = build_model(arch, variant, 10).eval()
    return deploy_transform(model, torch.randn(2, 3, 32, 32))[0]


def test_every_kind_of_a_shufflenet_with_every_module() -> None:
    units = int8_units(deployed("shufflenetv2_x0_5", "sp+ss+sex"))
    assert list(units) == [
        "stem",
        "depthwise",
        "pointwise",
        "square-pooling",
        "square-excitation",
        "classifier",
        "square-softmin",
    ]
    assert units["stem"] == ["conv1.0"] and units["classifier"] == ["fc"] and units["square-pooling"] == ["pool"]
    assert len(units["depthwise"]) == 3 + 16  # the 3 down-sampling units have two, the 13 others one
    assert len(units["square-excitation"]) == 16 and units["square-excitation"][0] == "stage2.0.attention"
    assert units["square-softmin"] == ["softmin"]  # folded to -x^2 (NegSquare), still its own unit


def test_a_resnet_se_and_its_fcs_belong_to_the_se_unit_only() -> None:
    model = deployed("resnet18", "se")
    units = int8_units(model)
    assert units["stem"] == ["conv1"] and len(units["conv"]) == 16 and len(units["se"]) == 8
    assert units["pointwise"] == ["layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"]
    every = [path for paths in units.values() for path in paths]
    assert not [p for p in every if ".attention.fc" in p]  # inside an SE: its unit, not a pointwise conv
    assert set(units) <= set(UNIT_KINDS)


def test_square_encoding_units_and_a_uint8_prologue_is_looked_through() -> None:
    model = deployed("shufflenetv2_x0_5", "sen")
    units = int8_units(model)
    assert units["square-encoding"][0] == "stage2.0.branch2.2.1" and len(units["square-encoding"]) == 16
    wrapped = PixelPrologue(model, [0.5] * 3, [0.25] * 3, pointwise=True)
    assert int8_units(wrapped) == units  # the prologue's own 1x1 conv is no unit; paths are relative to .model
    assert resolve_keep_float(wrapped, "stem", "onnx") == ("conv1.0",)


def test_resolve_none_auto_slugs_and_module_paths() -> None:
    model = deployed("shufflenetv2_x0_5", "se")
    assert resolve_keep_float(model, "none", "onnx") == ()
    auto = resolve_keep_float(model, "auto", "onnx")
    assert auto == resolve_keep_float(model, ",".join(DEFAULT_KEEP_FLOAT["onnx"]) or "none", "onnx")
    chosen = resolve_keep_float(model, "classifier, stage3.1, stage3.1.branch2.3, se", "onnx")
    # model order; stage3.1's own attention and depthwise conv are inside stage3.1 already
    assert chosen[:4] == ("stage2.0.attention", "stage2.1.attention", "stage2.2.attention", "stage2.3.attention")
    assert "stage3.1" in chosen and "stage3.1.attention" not in chosen and "stage3.1.branch2.3" not in chosen
    assert chosen[-1] == "fc" and len(chosen) == 16 - 1 + 1 + 1
    assert resolve_keep_float(model, "gem", "onnx") == ()  # a kind this model lacks keeps nothing
    assert set(DEFAULT_KEEP_FLOAT) <= set(FORMATS)
    assert all(set(slugs) <= set(UNIT_KINDS) for slugs in DEFAULT_KEEP_FLOAT.values())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("squre-pooling", "unknown unit kind 'squre-pooling' (did you mean square-pooling"),
        ("se,,fc", "has an empty name"),
        ("auto,se", "--keep-float auto stands alone"),
        ("stage 2", "unknown unit kind 'stage 2'"),
    ],
)
def test_a_spec_no_model_satisfies_is_refused_without_the_model(spec: str, message: str) -> None:
    with pytest.raises(ExportError, match="--keep-float") as caught:
        check_keep_float_spec(spec)
    assert message in str(caught.value)


def test_a_module_path_the_model_lacks_names_close_matches() -> None:
    model = deployed("resnet18", "gap")
    check_keep_float_spec("layer4.1.conv3")  # looks like a path: only the model can tell
    with pytest.raises(ExportError, match=r"'layer4\.1\.conv3' is neither a unit kind nor a module") as caught:
        resolve_keep_float(model, "layer4.1.conv3", "onnx")
    assert "did you mean layer4.1.conv2 or layer4.1.conv1" in str(caught.value)
    assert "this model's kinds: stem, conv, pointwise, gap, classifier" in str(caught.value)


def test_keep_float_and_sensitivity_need_int8() -> None:
    assert int8_options_problem(None, "auto", False) is None
    assert int8_options_problem("int8", "se,fc", False) is None
    assert "add --precision int8" in str(int8_options_problem("fp16", "none", False))
    assert "add --precision int8" in str(int8_options_problem(None, "auto", True))
    assert "not both" in str(int8_options_problem("int8", "se", True))
