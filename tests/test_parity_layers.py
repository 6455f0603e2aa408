"""Layer-wise parity: a fault injected into one module of an exported graph is found, and named, by comparing every
module's output with the PyTorch deploy model (ONNX: intermediate values as extra outputs; TFLite: all tensors kept)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.export.deploy import deploy_transform
from deepsquare.export.parity_layers import layer_files, layer_parity, markdown
from deepsquare.train.checkpoint import Checkpoint

FAULTY = "layer2.0"  # the vanilla CNN's second convolution


def deployed(ckpt: Path) -> tuple[torch.nn.Module, torch.Tensor]:
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model, _ = deploy_transform(Checkpoint.load(ckpt).build_model(), images)
    return model, images


def scale_onnx_conv(path: Path, index: int, factor: float = 1.5) -> None:
    """Multiply the weights of the ``index``-th Conv node of an ONNX file (a wrong fold, in effect)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    weight = [n for n in graph.graph.node if n.op_type == "Conv"][index].input[1]
    for i, init in enumerate(graph.graph.initializer):
        if init.name == weight:
            scaled = numpy_helper.to_array(init) * np.float32(factor)
            graph.graph.initializer[i].CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), weight))
    onnx.save(graph, str(path))


def scale_tflite_weights(path: Path, name_parts: tuple[str, ...], factor: float = 1.5) -> None:
    """Multiply a constant tensor of a ``.tflite`` file in place: its bytes found in the file and replaced."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (tensor,) = [
        t
        for t in interpreter.get_tensor_details()
        if all(part in t["name"] for part in name_parts) and len(t["shape"]) == 4 and t["name"].endswith(";")
    ]
    weights = interpreter.get_tensor(tensor["index"])
    data = path.read_bytes()
    assert data.count(weights.tobytes()) == 1
    path.write_bytes(data.replace(weights.tobytes(), (weights * np.float32(factor)).astype(np.float32).tobytes()))


def test_onnx_fault_is_named_and_the_export_writes_the_layer_report(tmp_path: Path, monkeypatch) -> None:
    """A converter that writes a wrong weight into one module: the gate fails, and the layer report (written
    without asking, beside the failed export's report) names that module with the bound."""
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from deepsquare.export import converters
    from deepsquare.export.pipeline import ExportRequest, export_bundle

    original = converters.CONVERTERS["onnx"]

    def faulty(*args, **kwargs):
        info = original(*args, **kwargs)
        scale_onnx_conv(args[2] / "model.onnx", index=1)
        return info

    monkeypatch.setitem(converters.CONVERTERS, "onnx", faulty)
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    out = tmp_path / "bundle"
    done = export_bundle(ExportRequest(ckpt, ["onnx"], out, samples=0, jobs=1), log=lambda line: None)
    assert not done.ok and not (out / "model.onnx").exists()
    record = done.report["formats"]["onnx"]
    assert not record["parity"]["passed"]
    assert f"first diverging module: {FAULTY} (Conv2d" in record["reason"]
    json_path, md_path = layer_files(done.report_file)
    layers = json.loads(json_path.read_text())["formats"]["onnx"]
    first = layers["first_diverging"]
    assert first["module"] == FAULTY and first["relative"] > layers["bound"] == 1e-4
    before = [row for row in layers["layers"] if row["module"] in ("layer1.0", "layer1.2")]
    assert before and not any(row["exceeds"] for row in before)  # the modules before it agree
    assert f"`{FAULTY}`" in md_path.read_text()
    assert record["parity_layers"]["first_diverging"]["module"] == FAULTY  # a summary stays in the report


def test_tflite_fault_is_named_with_the_op_it_is_fused_into(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from deepsquare.export.pipeline import ExportRequest, export_bundle

    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    out = tmp_path / "bundle"
    done = export_bundle(ExportRequest(ckpt, ["tflite"], out, samples=0, jobs=1), log=lambda line: None)
    assert done.ok
    model, images = deployed(ckpt)
    clean = layer_parity("tflite", out / "model.tflite", model.for_format("tflite"), images)
    assert clean["first_diverging"] is None and clean["compared"] >= 5
    scale_tflite_weights(out / "model.tflite", ("Sequential_layer2/", "Conv2d_0"))
    found = layer_parity("tflite", out / "model.tflite", model.for_format("tflite"), images)
    first = found["first_diverging"]
    # TFLite fuses the convolution and its ReLU into one op: its tensor is the ReLU's output.
    assert first["module"] == "layer2.2" and first["fused"] == [FAULTY]
    assert "layer2.2" in markdown({"tflite": found})


def test_executorch_says_why_it_is_not_compared() -> None:
    record = layer_parity("executorch", Path("model.pte"), torch.nn.Identity(), torch.zeros(1))
    assert record["first_diverging"] is None and "delegate" in record["note"]
