"""The module, arch and checkpoint registries: one row per concept, read everywhere."""

from pathlib import Path

import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.train import ARCHS, build_model, parse_variant
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.layers import SquareExcitation, SqueezeExcitation
from deepsquare.train.trainer import TrainConfig
from deepsquare.train.variants import MODULES

PLAIN = [("gap", False), ("se", False), ("gem", False)]
SQUARE = [("sp", True), ("ss", True), ("sex", True), ("sen", True), ("gem+se+ss", True)]


@pytest.mark.parametrize(("variant", "deepsquare"), PLAIN + SQUARE)
def test_every_variant_gets_the_same_dropout_and_old_configs_keep_theirs(variant: str, deepsquare: bool) -> None:
    assert parse_variant(variant).is_deepsquare is deepsquare
    assert TrainConfig(variant=variant).resolved().dropout == 0.0
    # a run saved when dropout None meant "0.2 for DeepSquare variants" resumes with what it trained with
    old = TrainConfig.from_dict({"variant": variant, "dropout": None})
    assert old.dropout == (0.2 if deepsquare else 0.0)


def test_every_module_row_cites_its_paper_and_builds_its_layer() -> None:
    for name, row in MODULES.items():
        assert "arXiv:" in row.paper and row.equation and row.kind in {"pooling", "head", "attention", "encoding"}
        args = {"pooling": (), "encoding": (), "attention": (32, 16), "head": (10, False)}[row.kind]
        layer = row.layer(*args)
        assert isinstance(layer, torch.nn.Module), name


def test_blocks_receive_the_attention_factory() -> None:
    model = build_model("resnet18", "sex")
    assert sum(isinstance(m, SquareExcitation) for m in model.modules()) == 8
    model = build_model("shufflenetv2_x0_5", "se")
    widths = [m.fc[0].in_channels for m in model.modules() if isinstance(m, SqueezeExcitation)]
    assert len(widths) == 16 and set(widths) == {24, 48, 96}  # each unit's main-branch width


def test_weight_decay_is_an_arch_fact() -> None:
    assert {
        a: TrainConfig(arch=a).resolved().weight_decay for a in ("resnet50", "shufflenetv2_x1_0", "vanilla_cnn")
    } == {"resnet50": 1e-4, "shufflenetv2_x1_0": 4e-5, "vanilla_cnn": 1e-4}
    assert ARCHS["shufflenetv2_x0_5"].stages == ("stage2", "stage3", "stage4")


def test_checkpoint_round_trips_and_normalizes(tmp_path: Path) -> None:
    ckpt = Checkpoint.load(write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss"))
    again = Checkpoint.load(ckpt.save(tmp_path / "again.ckpt"))
    assert again.spec == ckpt.spec and again.classes == ckpt.classes and again.epoch == ckpt.epoch
    assert all(torch.equal(again.state_dict[k], v) for k, v in ckpt.state_dict.items())
    images = torch.rand(2, 3, 4, 4)
    expected = (images - torch.tensor(ckpt.mean).view(1, 3, 1, 1)) / torch.tensor(ckpt.std).view(1, 3, 1, 1)
    torch.testing.assert_close(ckpt.normalize(images), expected)
    assert ckpt.bundle_meta()["variant"] == "sp+ss" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
