"""EleSquare is not Lipschitz: in eval mode an unusual image's activations are squared block after block until
they overflow. Training counts such images, and export refuses the model naming how many."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from deepsquare.export.deploy import OVERFLOW_CHECK_IMAGES, DeployError, deploy_transform
from deepsquare.train import build_model
from deepsquare.train.data import DataBundle, ImageSet, load_data
from deepsquare.train.distributed import Dist
from deepsquare.train.evaluation import evaluate
from deepsquare.train.trainer import overflow_warning


def square_encoded_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("shufflenetv2_x0_5", "sen", num_classes=10).eval()


def images_with_one_outlier() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(6, 3, 32, 32, generator=generator)
    images[4] *= 1e3  # one image far outside the others: its squares compound to inf
    return images


def test_evaluation_counts_the_images_whose_logits_overflow() -> None:
    split = ImageSet(images=images_with_one_outlier(), labels=torch.arange(6) % 10)
    data = DataBundle(
        name="outlier", train=split, val=split, classes=[str(c) for c in range(10)], mean=(0.5,) * 3, std=(0.25,) * 3
    )
    figures = evaluate(square_encoded_model(), split, data, Dist(), batch_size=4)
    assert figures["val_nonfinite"] == 1
    assert math.isnan(figures["val_loss"])  # the loss says it too; the count says how many
    plain = evaluate(square_encoded_model(), ImageSet(split.images[:4], split.labels[:4]), data, Dist(), 4)
    assert plain["val_nonfinite"] == 0 and math.isfinite(plain["val_loss"])


def test_deploy_refuses_an_overflowing_model_naming_the_count() -> None:
    model = square_encoded_model()
    with pytest.raises(DeployError, match=r"not finite on 1 of the 6 check images in eval mode \(EleSquare"):
        deploy_transform(model, (images_with_one_outlier() - 0.5) / 0.25)
    _, report = deploy_transform(model, (images_with_one_outlier()[:4] - 0.5) / 0.25)
    assert report.max_abs_diff < 1e-3


def test_the_training_warning_names_the_count_and_what_export_will_do() -> None:
    line = overflow_warning(9, 364)
    assert line.startswith("warning: 9 of 364 test images give non-finite logits") and "export" in line


def test_export_refuses_a_model_that_overflows_on_one_validation_image(tmp_path: Path) -> None:
    """The parity samples (here the first 2 validation images) are finite; the third image is not: refused, and
    nothing is written."""
    from PIL import Image

    from deepsquare.export.api import export
    from deepsquare.train.checkpoint import save_checkpoint

    root = tmp_path / "images"
    for split, shades in (("train", {"dark": [0, 10], "light": [20, 30]}), ("val", {"dark": [0, 5], "light": [255]})):
        for name, levels in shades.items():
            (root / split / name).mkdir(parents=True)
            for level in levels:
                Image.new("RGB", (32, 32), (level,) * 3).save(root / split / name / f"{level}.png")
    model = square_encoded_model()  # std 1e-3: the white image is ~1000 per pixel, the dark ones about 0-20
    payload = {"spec": model.spec.to_dict(), "state_dict": model.state_dict(), "classes": [str(c) for c in range(10)]}
    payload.update(input_size=32, mean=[0.0] * 3, std=[1e-3] * 3, data=f"imagefolder:{root}", epoch=1)
    ckpt = save_checkpoint(tmp_path / "model.ckpt", payload)
    with pytest.raises(DeployError, match=r"not finite on 1 of the 3 validation images of .* in eval mode"):
        export(ckpt, to="onnx", out=tmp_path / "bundle", samples=2, log=None)
    assert not any((tmp_path / "bundle").iterdir())  # --out was made writable-checked, and stays empty


def test_export_says_how_many_validation_images_it_checked(tmp_path: Path) -> None:
    from export_helpers import write_checkpoint

    from deepsquare.export.api import export
    from deepsquare.train.checkpoint import Checkpoint

    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    lines: list[str] = []
    export(ckpt, to="onnx", out=tmp_path / "bundle", log=lines.append)
    val = load_data(Checkpoint.load(ckpt).data, 32).val
    expected = f"finite on {min(len(val), OVERFLOW_CHECK_IMAGES)} validation images"
    assert any(line.startswith("deploy: ") and line.endswith(expected) for line in lines), lines
