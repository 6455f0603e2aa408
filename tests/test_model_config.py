"""Variant names, build options and the serializable spec."""

import json

import pytest
import torch

from deepsquare.train import (
    DSoPSpec,
    ModelConfigError,
    ModelSpec,
    VariantError,
    build_from_spec,
    build_model,
    parse_variant,
)


def test_parse_variant_canonical_names() -> None:
    v = parse_variant("SS+sp+sex")
    assert (v.pool, v.square_softmin, v.attention, v.square_encoding) == ("sp", True, "sex", False)
    assert v.name == "sp+sex+ss"
    assert parse_variant("gap").name == "gap"
    assert parse_variant("sen").pool == "gap"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sp+gap", r"two poolings \('sp' and 'gap'\)"),
        ("sp+gem", "two poolings"),
        ("se+sex", r"two channel attentions \('se' and 'sex'\)"),
        ("se_bump+se", "two channel attentions"),
        ("sp+sp", "names 'sp' twice"),
        ("spx", r"unknown variant name 'spx'.*did you mean 'sp'\?.*valid names.*gap, sp, gem, ss, sex, se"),
        ("", "empty variant"),
    ],
)
def test_bad_variants_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(VariantError, match=message):
        parse_variant(text)


def test_unknown_arch_lists_the_valid_ones() -> None:
    with pytest.raises(ModelConfigError, match=r"unknown arch 'resnet19'.*did you mean 'resnet18'.*shufflenetv2_x0_5"):
        build_model("resnet19")


def test_block_modules_on_the_vanilla_cnn_are_refused() -> None:
    with pytest.raises(VariantError, match="vanilla_cnn does not have"):
        build_model("vanilla_cnn", "sex")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stem": "tiny"}, "unknown stem 'tiny'"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
        ({"ss_per_class": True}, "needs the 'ss' variant"),
        ({"elesquare_after": (3,)}, "vanilla_cnn only"),
        ({"width": 2}, "unknown model option"),
    ],
)
def test_bad_options_are_clear_errors(options: dict, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        build_model("resnet18", **options)


def test_vanilla_position_checks() -> None:
    with pytest.raises(ModelConfigError, match="among"):
        build_model("vanilla_cnn", elesquare_after=(6,))
    with pytest.raises(ModelConfigError, match="both square the FC output"):
        build_model("vanilla_cnn", "ss", elesquare_after=(5,))


def test_spec_round_trips_through_json_and_rebuilds_the_same_model() -> None:
    model = build_model(
        "shufflenetv2_x0_5",
        "sp+ss+sex",
        num_classes=10,
        stem="cifar",
        dropout=0.2,
        ss_per_class=True,
        dsop=DSoPSpec(("stage3", "stage4"), dim=16, loss_weights=(0.2, 0.3)),
    )
    text = json.dumps(model.spec.to_dict())
    spec = ModelSpec.from_dict(json.loads(text))
    assert spec == model.spec
    rebuilt = build_from_spec(spec)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(rebuilt.eval()(x), model.eval()(x))


def test_spec_with_unknown_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fields: colour"):
        ModelSpec.from_dict({"arch": "resnet18", "colour": "red"})
