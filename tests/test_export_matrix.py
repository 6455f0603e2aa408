"""The export matrix of the issue: archs x variants x {with, without} DSoP, every format, parity gate on."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.runtime.runners import dequantize, quantize

DSOP = {"shufflenetv2_x0_5": ("stage3",), "resnet18": ("layer4",), "vanilla_cnn": ("layer3",)}
VARIANTS = ["gap", "sp+ss", "sp+sex", "sen", "se"]


def cases():
    for arch in DSOP:
        for variant in VARIANTS:
            if arch == "vanilla_cnn" and variant in ("sp+sex", "sen", "se"):
                continue  # block modules need blocks
            for with_dsop in (False, True):
                yield pytest.param(arch, variant, with_dsop, id=f"{arch}-{variant}-{'dsop' if with_dsop else 'plain'}")


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "variant", "with_dsop"), list(cases()))
def test_every_format_passes_parity(tmp_path: Path, arch: str, variant: str, with_dsop: bool) -> None:
    dsop = {"stages": DSOP[arch], "dim": 8} if with_dsop else None
    ckpt = write_checkpoint(tmp_path, arch, variant, dsop)
    result = subprocess.run(
        [sys.executable, "-m", "deepsquare.export.cli", str(ckpt), "--to", "all", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert all(r["passed"] for r in report["formats"].values())
    for fmt in ("onnx", "tflite"):
        assert report["formats"][fmt]["parity"]["max_rel_diff"] < 1e-4


def test_int8_io_quantization_round_trips() -> None:
    detail = {"dtype": np.int8, "quantization": (0.05, -3)}
    values = np.array([-10.0, -1.0, 0.0, 0.02, 1.0, 5.0], dtype=np.float32)
    q = quantize(values, detail)
    assert q.dtype == np.int8 and q.tolist() == [-128, -23, -3, -3, 17, 97]
    np.testing.assert_allclose(dequantize(q, detail)[1:], values[1:], atol=0.025 + 1e-6)  # half a step
    assert quantize(values, {"dtype": np.float32, "quantization": (0.0, 0)}).dtype == np.float32


def test_int8_export_computes_in_int8_behind_float_input_and_output(tmp_path: Path) -> None:
    """Float in and out (LiteRT's CompiledModel runs it; no scale for apps to apply), int8 inside."""
    from ai_edge_litert.interpreter import Interpreter

    from deepsquare.export.converters import export_tflite
    from deepsquare.export.deploy import deploy_transform
    from deepsquare.runtime.bundle import BundleMeta
    from deepsquare.train import build_model

    model = build_model("vanilla_cnn", "gap", 10).eval()
    deployed, _ = deploy_transform(model, torch.randn(4, 3, 32, 32))
    meta = BundleMeta("vanilla_cnn", "gap", [str(i) for i in range(10)], 32, [0.5] * 3, [0.25] * 3)
    info = export_tflite(
        deployed, torch.randn(2, 3, 32, 32), tmp_path, meta, precision="int8", calibration=torch.randn(16, 3, 32, 32)
    )
    assert info["precision"] == "int8" and meta.formats == {}  # the caller's metadata is left as it was
    interpreter = Interpreter(model_path=str(tmp_path / "model.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    int8 = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8]
    assert len(int8) > 5  # weights and activations


def test_onnx_int8_is_qdq_with_every_conv_and_the_classifier_int8_and_float_logits(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from deepsquare.export.converters import export_onnx
    from deepsquare.export.deploy import deploy_transform
    from deepsquare.runtime.bundle import BundleMeta
    from deepsquare.train import build_model

    model = build_model("vanilla_cnn", "gap", 10).eval()
    deployed, _ = deploy_transform(model, torch.randn(4, 3, 32, 32))
    meta = BundleMeta("vanilla_cnn", "gap", [str(i) for i in range(10)], 32, [0.5] * 3, [0.25] * 3)
    calibration = torch.randn(32, 3, 32, 32)
    info = export_onnx(deployed, calibration[:2], tmp_path, meta, precision="int8", calibration=calibration)
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert info["precision"] == "int8" and {"QuantizeLinear", "DequantizeLinear"} <= set(info["op_types"])
    feeds = {n.name: [i for i in n.input] for n in graph.node}
    quantized_inputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    # The first conv is quantized too: kept in float, ORT ran the stem's MaxPool in its slow uint8 NCHW kernel.
    assert all(quantized_inputs & set(feeds[conv.name]) for conv in convs)
    (head,) = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    assert quantized_inputs & set(feeds[head.name])  # int8 classifier weights
    assert not [
        n for n in graph.node if n.op_type == "QuantizeLinear" and set(n.input) & set(head.output)
    ]  # float logits
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": calibration[:8].numpy()})[0]
    expected = deployed(calibration[:8]).detach().numpy()
    assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()  # int8 round-off, not garbage
