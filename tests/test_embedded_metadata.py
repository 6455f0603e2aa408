"""Each model file's embedded metadata equals the bundle's model.json: ONNX ``metadata_props``, the TFLite metadata
buffers (the bundle JSON and labels.txt), Core ML's user-defined metadata and ``ClassifierConfig`` labels carry the
same labels, mean/std, input kind and bundle id (an app that reads only the model file sees the same contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from export_helpers import write_checkpoint

from deepsquare.runtime import schema
from deepsquare.runtime.bundle import BundleMeta, FormatEntry

# What every model file carries of model.json; the rest (sha256, golden, samples, the other formats) is only known
# once the whole bundle is assembled, after the file was written.
SHARED = ("schema", "id", "arch", "variant", "classes", "input_size", "mean", "std", "pixel_range", "input")


def from_flat(flat: dict[str, str]) -> dict[str, Any]:
    """ONNX / Core ML string metadata -> the model.json values it stands for."""
    decoded = {
        "schema": flat["deepsquare.schema"],
        "id": flat["deepsquare.id"],
        "arch": flat["deepsquare.arch"],
        "variant": flat["deepsquare.variant"],
        "classes": json.loads(flat["deepsquare.classes"]),
        "input_size": int(flat["deepsquare.input_size"]),
        "mean": json.loads(flat["deepsquare.mean"]),
        "std": json.loads(flat["deepsquare.std"]),
        "pixel_range": flat["deepsquare.pixel_range"],
        "input": flat["deepsquare.input"],
    }
    assert set(decoded) == set(SHARED)
    return decoded


def test_flat_metadata_stands_for_the_shared_fields() -> None:
    meta = BundleMeta("vanilla_cnn", "gap", ["a b", 'c"d'], 32, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6], input="uint8")
    meta.formats["onnx"] = FormatEntry("model.onnx", "NHWC", "input", "logits", "fp32", {}, "uint8")
    sidecar = json.loads(meta.to_json())
    assert from_flat(meta.flat_metadata()) == {k: sidecar[k] for k in SHARED}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("embedded")
    ckpt = write_checkpoint(tmp, "vanilla_cnn", "gap")
    out = tmp / "out"
    command = [sys.executable, "-m", "deepsquare.export.commands", "export", str(ckpt), "--to", "onnx,tflite,coreml"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    sidecar = json.loads((out / "model.json").read_text())
    assert schema.errors(sidecar) == []
    return out, sidecar


@pytest.mark.slow  # converts three formats
def test_onnx_metadata_props_equal_model_json(bundle) -> None:
    import onnx

    out, sidecar = bundle
    props = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert from_flat(props) == {k: sidecar[k] for k in SHARED}


@pytest.mark.slow
def test_tflite_metadata_equals_model_json(bundle) -> None:
    from deepsquare.export.tflite_metadata import tflite_metadata

    out, sidecar = bundle
    buffers = tflite_metadata(out / "model.tflite")
    embedded = json.loads(buffers["deepsquare_bundle"])
    assert schema.errors(embedded) == []  # a sidecar of its own, valid by the same schema
    assert {k: embedded[k] for k in SHARED} == {k: sidecar[k] for k in SHARED}
    assert embedded["formats"] == {"tflite": sidecar["formats"]["tflite"]}
    assert buffers["labels.txt"].decode().split("\n") == sidecar["classes"]


@pytest.mark.slow
def test_coreml_metadata_and_classifier_labels_equal_model_json(bundle) -> None:
    import coremltools as ct

    from deepsquare.export.coreml import _program_labels

    out, sidecar = bundle
    spec = ct.utils.load_spec(str(out / "model.mlpackage"))
    assert from_flat(dict(spec.description.metadata.userDefined)) == {k: sidecar[k] for k in SHARED}
    assert _program_labels(spec) == sidecar["classes"]
    assert sidecar["formats"]["coreml"]["input_dtype"] == "image"  # Core ML's ImageType takes the picture itself
