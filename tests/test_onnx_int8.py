"""ONNX int8 with kept-float modules: what ``--keep-float`` keeps has no int8 inside, the rest stays int8."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.export.converters import export_onnx
from deepsquare.export.deploy import deploy_transform
from deepsquare.export.int8_units import resolve_keep_float, under_any
from deepsquare.export.prologue import on_pixels
from deepsquare.runtime.bundle import BundleMeta
from deepsquare.train import build_model

QDQ = ("QuantizeLinear", "DequantizeLinear")


def export_int8(folder: Path, arch: str, variant: str, spec: str, uint8: bool = False) -> tuple[dict, tuple, list]:
    """Export a random-weight deploy model to int8 ONNX; (converter info, kept paths, the op map's ops)."""
    torch.manual_seed(0)
    deployed, _ = deploy_transform(build_model(arch, variant, 10).eval(), torch.randn(4, 3, 32, 32))
    deployed = deployed.for_format("onnx")
    meta = BundleMeta(arch, variant, [str(i) for i in range(10)], 32, [0.5] * 3, [0.25] * 3)
    meta.input = "uint8" if uint8 else "float"
    calibration = torch.randn(16, 3, 32, 32).clamp(-2, 2)
    model, example, calibration = on_pixels("onnx", deployed, calibration[:2], calibration, meta)
    keep = resolve_keep_float(model, spec, "onnx")
    info = export_onnx(model, example, folder, meta, precision="int8", calibration=calibration, keep_float=keep)
    ops = json.loads((folder / "model.onnx.modules.json").read_text())["ops"]
    return info, keep, ops


def inside(ops: list[dict], keep: tuple[str, ...], prefix: str = "") -> list[dict]:
    return [op for op in ops if under_any(op["module"], tuple(prefix + k for k in keep))]


def assert_float_inside(ops: list[dict], keep: tuple[str, ...], prefix: str = "") -> None:
    """Every op of a kept module reads float weights, and no Q -> DQ pair runs between two of its ops."""
    writer = {out: op for op in ops for out in op["outputs"]}
    kept = inside(ops, keep, prefix)
    compute = [op for op in kept if op["type"] not in QDQ]
    assert compute, "the kept modules have ops"
    kept_names = {op["name"] for op in compute}
    for op in compute:
        for tensor in op["inputs"]:
            source = writer.get(tensor)
            if source is None or source["type"] != "DequantizeLinear":
                continue
            quantize = writer.get(source["inputs"][0])
            # a DQ feeding a kept op carries an activation from outside (its boundary), never a weight or an
            # activation computed inside
            assert quantize is not None and quantize["type"] == "QuantizeLinear", (op["name"], "int8 weight")
            producer = writer.get(quantize["inputs"][0])
            assert producer is None or producer["name"] not in kept_names, (op["name"], "int8 inside")


def weight_is_int8(ops: list[dict], op: dict) -> bool:
    writer = {out: o for o in ops for out in o["outputs"]}
    weight = writer.get(op["inputs"][1])
    return weight is not None and weight["type"] == "DequantizeLinear"


def test_kept_convs_and_classifier_have_no_int8_inside_and_the_rest_stays_int8(tmp_path: Path) -> None:
    info, keep, ops = export_int8(tmp_path, "vanilla_cnn", "gap", "layer2.0,classifier")
    assert keep == ("layer2.0", "fc") and info["keep_float"] == ["layer2.0", "fc"] and info["float_ops"] >= 2
    assert_float_inside(ops, keep)
    convs = {op["module"]: op for op in ops if op["type"] == "Conv"}
    assert not weight_is_int8(ops, convs["layer2.0"])
    assert weight_is_int8(ops, convs["layer1.0"]) and weight_is_int8(ops, convs["layer3.0"])
    (head,) = [op for op in ops if op["type"] in ("Gemm", "MatMul")]
    assert not weight_is_int8(ops, head)


def test_keep_none_quantizes_every_conv(tmp_path: Path) -> None:
    info, keep, ops = export_int8(tmp_path, "vanilla_cnn", "gap", "none")
    assert keep == () and info["keep_float"] == [] and info["float_ops"] == 0
    assert all(weight_is_int8(ops, op) for op in ops if op["type"] in ("Conv", "Gemm"))


@pytest.mark.slow
def test_kept_se_units_of_a_shufflenet_behind_a_uint8_prologue(tmp_path: Path) -> None:
    info, keep, ops = export_int8(tmp_path, "shufflenetv2_x0_5", "se", "se,stage3.1", uint8=True)
    assert "stage3.1" in keep and "stage2.0.attention" in keep and info["keep_float"] == list(keep)
    assert_float_inside(ops, keep, prefix="model.")  # the prologue wraps the model: its ops are under "model."
    sigmoid_modules = {op["module"] for op in ops if op["type"] == "Sigmoid"}
    assert sigmoid_modules and all(under_any(m, tuple(f"model.{k}" for k in keep)) for m in sigmoid_modules)
    int8_convs = [op for op in ops if op["type"] == "Conv" and weight_is_int8(ops, op)]
    assert int8_convs and not inside(int8_convs, keep, "model.")


@pytest.mark.slow
def test_export_records_what_each_int8_format_kept_float(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "shufflenetv2_x0_5", "se")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "deepsquare.export.cli", str(ckpt), "--to", "onnx", "--precision", "int8"]
    result = subprocess.run(
        [*command, "--keep-float", "se,fc", "--out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((out / "export_report.json").read_text())["formats"]["onnx"]
    assert record["keep_float"][-1] == "fc" and len(record["keep_float"]) == 17 and record["float_ops"] > 17
    bad = subprocess.run(
        [*command, "--keep-float", "stage9.1", "--out", str(tmp_path / "bad")], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "'stage9.1' is neither a unit kind nor a module" in bad.stderr
    assert not (tmp_path / "bad" / "model.onnx").exists()
    np.testing.assert_equal(sorted(p.name for p in out.iterdir() if p.suffix == ".onnx"), ["model.onnx"])
