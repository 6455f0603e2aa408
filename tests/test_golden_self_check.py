"""The golden self-check written into every bundle (export/golden.py) and ``deepsquare predict --self-check``
(runtime/self_check.py): it passes on what the export wrote and fails, exit 1 with a clear line, when the golden
file or the model was changed; plus the first-screen samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from export_helpers import write_checkpoint
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from deepsquare.export.golden import golden_tolerance, pick_samples, write_contract_files
from deepsquare.runtime import schema
from deepsquare.runtime.bundle import BundleMeta, FormatEntry, load_bundle, model_sha256
from deepsquare.runtime.self_check import self_check
from deepsquare.train.data import load_data

SIZE = 32


def predict(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "deepsquare.export.commands", "predict", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def linear_on_means(weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """An ONNX classifier made by hand: the mean of each channel, then a linear layer (logits)."""
    classes = weight.shape[0]
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"], transB=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def torch_twin(weight: np.ndarray, bias: np.ndarray) -> torch.nn.Module:
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), linear).eval()


def write_model(folder: Path, meta: BundleMeta, seed: int) -> torch.nn.Module:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 2, (len(meta.classes), 3)).astype(np.float32)
    bias = rng.normal(0, 0.5, len(meta.classes)).astype(np.float32)
    onnx.save(linear_on_means(weight, bias), str(folder / "model.onnx"))
    meta.sha256["model.onnx"] = model_sha256(folder / "model.onnx")
    return torch_twin(weight, bias)


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, BundleMeta]:
    """A bundle whose ONNX model is made by hand, with the golden files and samples the export writes."""
    data = load_data("synthetic:64", SIZE)
    meta = BundleMeta("tiny", "gap", list(data.classes), SIZE, list(data.mean), list(data.std))
    meta.formats["onnx"] = FormatEntry("model.onnx", "NCHW", "input", "logits", "fp32", {"outputs": "logits"})
    meta.formats["coreml"] = FormatEntry(  # off macOS: not run; golden.json has PyTorch's probabilities for it
        "model.mlpackage", "image", "image", "classLabel_probs", "fp16", {"outputs": "probabilities"}, "image"
    )
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "model.mlpackage").mkdir()
    model = write_model(folder, meta, seed=0)
    write_contract_files(folder, meta, model, data, lambda line: None)
    return folder, meta


def test_the_export_writes_golden_files_the_schema_accepts(bundle) -> None:
    folder, meta = bundle
    _, loaded = load_bundle(folder)
    assert loaded.golden == "golden.json" and loaded.samples == "samples.json" and loaded.id == meta.id
    assert (folder / "model.schema.json").read_text() == schema.SCHEMA_FILE.read_text()
    golden = json.loads((folder / "golden.json").read_text())
    assert schema.errors(golden, schema.GOLDEN) == []
    data = load_data("synthetic:64", SIZE)
    pixels = np.asarray(Image.open(folder / "golden.png"))
    # The first real parity image (val's first), as uint8: exactly what every model of the bundle is fed.
    want = np.rint(data.val.images[0].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    assert pixels.shape == (SIZE, SIZE, 3) and np.array_equal(pixels, want)
    assert golden["label"] == data.classes[int(data.val.labels[0])]
    # The reference by hand: channel means of the normalized pixels, then the linear layer.
    x = (pixels.astype(np.float64) / 255 - np.asarray(meta.mean)) / np.asarray(meta.std)
    onnx_model = onnx.load(str(folder / "model.onnx"))
    weight, bias = (numpy_helper.to_array(t).astype(np.float64) for t in onnx_model.graph.initializer)
    logits = weight @ x.mean(axis=(0, 1)) + bias
    np.testing.assert_allclose(golden["reference"]["logits"], logits, atol=1e-5)
    onnx_entry, coreml_entry = golden["formats"]["onnx"], golden["formats"]["coreml"]
    assert onnx_entry["measured"] and onnx_entry["outputs"] == "logits"
    np.testing.assert_allclose(onnx_entry["values"], logits, atol=1e-5)
    top = int(np.argmax(logits))
    assert onnx_entry["top5"][0][0] == golden["reference"]["top5"][0][0] == meta.classes[top]
    assert not coreml_entry["measured"] and coreml_entry["outputs"] == "probabilities"
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(coreml_entry["values"], probs, atol=1e-6)
    assert coreml_entry["tolerance"] == pytest.approx(1e-2)  # the fp16 parity bound on probabilities


def test_samples_are_held_out_images_spread_over_the_classes(bundle) -> None:
    folder, _ = bundle
    listed = json.loads((folder / "samples.json").read_text())
    assert schema.errors(listed, schema.SAMPLES) == [] and len(listed) == 8
    labels = [s["label"] for s in listed]
    assert len(set(labels)) == 8  # 10 classes: 8 different ones
    data = load_data("synthetic:64", SIZE)
    test_images = np.rint(data.test.images.numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    for sample in listed:
        pixels = np.asarray(Image.open(folder / sample["file"]))
        assert pixels.shape == (SIZE, SIZE, 3)
        (found,) = np.flatnonzero((test_images == pixels).all(axis=(1, 2, 3)))[:1]  # one of the test split's
        assert data.classes[int(data.test.labels[found])] == sample["label"]


def test_pick_samples_round_robin_and_without_data() -> None:
    data = load_data("synthetic:64", SIZE)
    picked = pick_samples(data, 12)
    labels = [label for _, label in picked]
    assert labels[:10] == data.classes and len(set(labels[10:])) == 2  # every class once before any twice
    assert pick_samples(None) == []


def test_self_check_passes_on_what_the_export_wrote(bundle) -> None:
    folder, _ = bundle
    result = predict(str(folder), "--self-check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("onnx: self-check passed (max |diff| ") and lines[0].endswith(" <= 2e-04)")
    assert lines[1] == "coreml: self-check not run here (needs macOS)"


def test_self_check_fails_when_golden_json_was_altered(bundle) -> None:
    folder, _ = bundle
    golden = json.loads((folder / "golden.json").read_text())
    golden["formats"]["onnx"]["values"][2] += 0.01
    (folder / "golden.json").write_text(json.dumps(golden))
    result = predict(str(folder), "--self-check", "--to", "onnx")
    assert result.returncode == 1
    assert result.stdout.startswith("onnx: self-check FAILED: max |diff| 0.01 > 2e-04 against golden.json")
    golden["formats"]["onnx"]["tolerance"] = "loose"
    (folder / "golden.json").write_text(json.dumps(golden))
    result = predict(str(folder), "--self-check")
    assert (
        result.returncode == 1 and "golden.json is not a valid golden file: formats.onnx.tolerance: " in result.stderr
    )


def test_self_check_fails_when_the_model_was_replaced(bundle) -> None:
    folder, meta = bundle
    write_model(folder, meta, seed=1)  # other weights: the sha256 refuses the file first
    result = predict(str(folder), "--self-check")
    assert result.returncode == 1 and "not the file this bundle's model.json was exported with" in result.stderr
    (folder / "model.json").write_text(meta.to_json())  # a sidecar rewritten with the new hash: the golden check
    results = self_check(folder, ["onnx"])
    assert not results[0].passed and not results[0].skipped and "self-check FAILED: max |diff|" in results[0].line
    assert predict(str(folder), "--self-check").returncode == 1


def test_self_check_needs_the_golden_files(bundle) -> None:
    folder, meta = bundle
    Image.new("RGB", (SIZE + 1, SIZE)).save(folder / "golden.png")
    result = predict(str(folder), "--self-check")
    assert result.returncode == 1 and f"must be an RGB image of {SIZE}x{SIZE}" in result.stderr
    meta.golden = None
    (folder / "model.json").write_text(meta.to_json())
    result = predict(str(folder), "--self-check")
    assert result.returncode == 1 and "has no golden self-check" in result.stderr and "re-export" in result.stderr
    result = predict(str(folder))
    assert result.returncode == 2 and "give at least one IMAGE to classify, or --self-check" in result.stderr


def test_without_the_data_set_the_golden_image_is_fixed_noise_and_there_are_no_samples(tmp_path: Path) -> None:
    meta = BundleMeta("tiny", "gap", ["a", "b", "c"], SIZE, [0.5] * 3, [0.25] * 3)
    meta.formats["onnx"] = FormatEntry("model.onnx", "NCHW", "input", "logits", "fp32", {"outputs": "logits"})
    model = write_model(tmp_path, meta, seed=2)
    write_contract_files(tmp_path, meta, model, None, lambda line: None)  # --samples 0, or data that does not load
    _, loaded = load_bundle(tmp_path)
    assert loaded.samples is None and not (tmp_path / "samples").exists() and not (tmp_path / "samples.json").exists()
    golden = json.loads((tmp_path / "golden.json").read_text())
    assert golden["label"] is None and schema.errors(golden, schema.GOLDEN) == []
    assert np.asarray(Image.open(tmp_path / "golden.png")).std() > 50  # noise, the same at every export
    assert [r.passed for r in self_check(tmp_path)] == [True]


def test_an_invalid_sidecar_fails_the_export_naming_the_field(tmp_path: Path) -> None:
    from deepsquare.export.request import ExportError

    meta = BundleMeta("tiny", "gap", ["a", "b"], SIZE, [0.5] * 3, [0.25] * 3, input="rgb")  # a bug in the exporter
    meta.formats["onnx"] = FormatEntry("model.onnx", "NCHW", "input", "logits", "fp32", {"outputs": "logits"})
    model = write_model(tmp_path, meta, seed=3)
    with pytest.raises(ExportError, match=r"invalid model\.json \(input: 'rgb' is not one of .*nothing was published"):
        write_contract_files(tmp_path, meta, model, None, lambda line: None)
    assert not (tmp_path / "model.json").exists() and not (tmp_path / "golden.json").exists()


def test_tolerance_is_the_parity_bound() -> None:
    assert golden_tolerance("fp32", np.array([0.5, -3.0]), measured=True) == pytest.approx(2 * 1e-4 * 3)
    assert golden_tolerance("fp16", np.array([0.1, 0.9]), measured=False) == pytest.approx(1e-2)
    assert golden_tolerance("int8", np.array([10.0, -20.0]), measured=True) == pytest.approx(2.0)


@pytest.mark.slow  # converts two formats
def test_a_real_export_self_checks_in_every_runtime(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "deepsquare.export.commands", "export", str(ckpt), "--to", "onnx,tflite"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "golden self-check: golden.png (label " in result.stdout
    names = {p.name for p in out.iterdir()}
    assert {"golden.png", "golden.json", "model.schema.json", "samples", "samples.json"} <= names
    golden = json.loads((out / "golden.json").read_text())
    assert all(golden["formats"][name]["measured"] for name in ("onnx", "tflite"))
    result = predict(str(out), "--self-check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["onnx", "tflite"]
    assert all(": self-check passed (max |diff| " in line for line in result.stdout.splitlines())
