"""ExecuTorch int8 (PT2E + XNNPACKQuantizer): convolutions run in XNNPACK as int8, kept modules stay float, the
logits stay float, and a trained model's int8 .pte agrees with PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import deepsquare as ds
from deepsquare.export.deploy import deploy_transform
from deepsquare.export.prologue import PixelPrologue, on_pixels
from deepsquare.export.quantize_executorch import module_paths, node_module, quantize_program
from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS
from deepsquare.train import build_model

DEQUANTIZE = "dequantize_per"


def test_int8_is_a_precision_of_executorch() -> None:
    assert FORMATS["executorch"].precisions == ("fp32", "int8")


def test_kept_paths_are_seen_under_the_pixel_prologue_which_stays_float() -> None:
    model = build_model("vanilla_cnn", "gap", 10)
    assert module_paths(model, ("layer2.0", "fc")) == (("layer2.0", "fc"), "")
    wrapped = PixelPrologue(model, [0.5] * 3, [0.25] * 3, pointwise=True)
    assert module_paths(wrapped, ("layer2.0",)) == (("pointwise", "model.layer2.0"), "model.")


def deployed_cnn(uint8: bool = False) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, BundleMeta]:
    torch.manual_seed(0)
    deployed, _ = deploy_transform(build_model("vanilla_cnn", "gap", 10).eval(), torch.randn(4, 3, 32, 32))
    meta = BundleMeta("vanilla_cnn", "gap", [str(i) for i in range(10)], 32, [0.5] * 3, [0.25] * 3)
    meta.input = "uint8" if uint8 else "float"
    calibration = torch.randn(16, 3, 32, 32).clamp(-2, 2)
    model, example, calibration = on_pixels(
        "executorch", deployed.for_format("executorch"), calibration[:2], calibration, meta
    )
    return model, example, calibration, meta


def conv_weights(program: torch.export.ExportedProgram) -> dict[str, bool]:
    """Each convolution / linear's module -> whether its weight reaches it through a dequantize (int8)."""
    found = {}
    for node in program.graph.nodes:
        name = str(getattr(node.target, "__name__", node.target))
        if node.op == "call_function" and name.split(".")[0] in ("conv2d", "linear", "convolution"):
            found[node_module(node)] = (
                DEQUANTIZE in str(node.args[1].target) if node.args[1].op == "call_function" else False
            )
    return found


@pytest.mark.slow
@pytest.mark.parametrize("uint8", [False, True])
def test_kept_module_stays_float_and_the_rest_is_int8(uint8: bool) -> None:
    model, example, calibration, _ = deployed_cnn(uint8)
    program, info = quantize_program(model, example, calibration, keep_float=("layer2.0",))
    prefix = "model." if uint8 else ""
    weights = conv_weights(program)
    assert weights[f"{prefix}layer2.0"] is False and weights[f"{prefix}layer1.0"] and weights[f"{prefix}layer3.0"]
    assert weights[f"{prefix}fc"]  # the classifier's weights are int8 (dynamically quantized input, float logits)
    if uint8:
        assert weights["pointwise"] is False  # the pixel prologue stays float
    assert info["keep_float"] == ["layer2.0"] and info["float_ops"] == 1 + uint8
    (output,) = [n for n in program.graph.nodes if n.op == "output"]
    assert all("quantize" not in str(n.target) for n in output.all_input_nodes)  # float logits


@pytest.mark.slow
def test_int8_pte_delegates_its_quantized_convolutions_to_xnnpack(tmp_path: Path) -> None:
    from deepsquare.export.converters import export_executorch
    from deepsquare.runtime.runners import open_model

    model, example, calibration, meta = deployed_cnn()
    info = export_executorch(model, example, tmp_path, meta, precision="int8", calibration=calibration)
    assert info["precision"] == "int8" and info["float_ops"] == 0 and info["xnnpack_delegated"]
    assert info["delegation"]["outside_count"] == 0, info["delegation"]
    delegated = quantized_ops_in_delegates(model, example, calibration)
    assert delegated["conv"] >= 3 and delegated["quantize"] >= 1
    runner = open_model(FORMATS["executorch"], tmp_path / "model.pte", meta, 1)
    got = runner.run(calibration.numpy())
    assert got.dtype == np.float32 and got.shape == (16, 10)
    with torch.no_grad():
        expected = model(calibration).numpy()
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.8
    assert (tmp_path / "model.pte").stat().st_size < 0.5 * fp32_size(model, example, tmp_path / "fp32", meta)


def quantized_ops_in_delegates(model: torch.nn.Module, example: torch.Tensor, calibration: torch.Tensor) -> dict:
    """How many convolutions with an int8 weight and quantize ops the XNNPACK partitions took."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program, _ = quantize_program(model, example, calibration)
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).exported_program()
    counts = {"conv": 0, "quantize": 0}
    for node in lowered.graph.nodes:
        if node.op == "call_function" and "executorch_call_delegate" in str(node.target):
            for inner in getattr(lowered.graph_module, node.args[0].target).original_module.graph.nodes:
                text = str(inner.target)
                if "convolution" in text and DEQUANTIZE in str(inner.args[1].target):
                    counts["conv"] += 1
                counts["quantize"] += "quantize_per_tensor" in text and DEQUANTIZE not in text
    return counts


def fp32_size(model: torch.nn.Module, example: torch.Tensor, folder: Path, meta: BundleMeta) -> int:
    from deepsquare.export.converters import export_executorch

    folder.mkdir()
    export_executorch(model, example, folder, meta)
    return (folder / "model.pte").stat().st_size


@pytest.mark.slow
def test_trained_model_int8_pte_agrees_with_pytorch(tmp_path: Path) -> None:
    trained = ds.train(
        arch="vanilla_cnn", variant="gap", data="digits", epochs=2, batch_size=32, input_size=16, out=tmp_path / "run"
    )
    result = ds.export(trained.checkpoint, to=["executorch"], precision="int8", out=tmp_path / "bundle", log=None)
    assert result.ok, result
    parity = result.parity["executorch"]
    assert parity["top1_agreement"] >= 0.97, parity
    record = result.report["formats"]["executorch"]
    held_out = record["accuracy"]
    assert record["precision"] == "int8" and abs(held_out["delta_points"]) <= 100 / held_out["images"], held_out
    model = ds.load(result.out)
    assert model.format == "executorch"
