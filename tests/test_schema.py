"""The bundle contract: one versioned JSON Schema (runtime/bundle.schema.json), what Python writes follows it, a
sidecar that breaks it is refused naming the field, "/1" bundles still load, ``deepsquare schema`` prints it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
from conftest import FIXTURES

from deepsquare.runtime import schema
from deepsquare.runtime.bundle import SCHEMA, SCHEMA_V1, BundleError, BundleMeta, FormatEntry, load_bundle

V1_SIDECAR = FIXTURES / "bundle_v1" / "model.json"  # a deepsquare-bundle/1 sidecar, as deepsquare 0.1 wrote it


def sample_meta() -> BundleMeta:
    meta = BundleMeta("vanilla_cnn", "gap", [str(d) for d in range(10)], 32, [0.3] * 3, [0.3] * 3, input="uint8")
    meta.formats["onnx"] = FormatEntry("model.onnx", "NHWC", "input", "logits", "fp32", {"outputs": "logits"}, "uint8")
    meta.formats["coreml"] = FormatEntry(
        "model.mlpackage", "image", "image", "classLabel_probs", "fp16", {"outputs": "probabilities"}, "image"
    )
    meta.sha256 = {"model.onnx": "ab" * 32, "model.mlpackage": "cd" * 32}
    meta.golden, meta.samples = "golden.json", "samples.json"
    return meta


def write_bundle(folder: Path, sidecar: dict) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "model.json").write_text(json.dumps(sidecar))
    return folder


def test_the_schema_is_a_valid_draft7_schema_named_by_its_version() -> None:
    document = schema.bundle_schema()
    jsonschema.Draft7Validator.check_schema(document)
    assert document["$id"].endswith(SCHEMA) and SCHEMA == "deepsquare-bundle/2"
    assert document["properties"]["schema"]["enum"] == [SCHEMA, SCHEMA_V1]


def test_the_schema_names_every_field_python_writes() -> None:
    """No field of BundleMeta or FormatEntry is left out of the schema, and the schema has none Python lacks."""
    definitions = schema.bundle_schema()["definitions"]
    bundle, entry = definitions["bundle_v2"], definitions["format_entry_v2"]
    assert set(bundle["properties"]) == set(bundle["required"]) == {f.name for f in fields(BundleMeta)}
    assert set(entry["properties"]) == set(entry["required"]) == {f.name for f in fields(FormatEntry)}
    assert bundle["additionalProperties"] is False and entry["additionalProperties"] is False


def test_what_python_writes_follows_the_schema(tmp_path: Path) -> None:
    meta = sample_meta()
    assert schema.errors(json.loads(meta.to_json())) == []
    _, loaded = load_bundle(write_bundle(tmp_path / "b", json.loads(meta.to_json())))
    assert loaded == meta
    other = BundleMeta("a", "b", ["x", "y"], 8, [0.5] * 3, [0.5] * 3)
    assert other.id != meta.id and len(other.id) == 36  # a fresh UUID for every bundle
    other.check()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["formats"]["onnx"].update(input_dtype="int4"), "formats.onnx.input_dtype"),
        (lambda d: d["formats"]["onnx"].update(layout="NCHW"), "formats.onnx.layout"),  # uint8 takes NHWC pixels
        (lambda d: d["formats"]["coreml"].update(input_dtype="float32"), "formats.coreml.input_dtype"),
        (lambda d: d["formats"]["onnx"].update(file="../model.onnx"), "formats.onnx.file"),
        (lambda d: d["formats"]["onnx"].pop("output_name"), "formats.onnx"),
        (lambda d: d["classes"].__setitem__(3, 3), "classes[3]"),
        (lambda d: d.update(classes=["a", "a"]), "classes"),
        (lambda d: d.update(mean=[0.5, 0.5]), "mean"),
        (lambda d: d.update(std=[0.5, 0.0, 0.5]), "std[1]"),
        (lambda d: d.update(input_size=4), "input_size"),
        (lambda d: d.update(input="rgb"), "input"),
        (lambda d: d.update(golden="other.json"), "golden"),
        (lambda d: d.update(id="not-a-uuid"), "id"),
        (lambda d: d["sha256"].update({"model.onnx": "xyz"}), "sha256.model.onnx"),
        (lambda d: d.pop("id"), "'id' is a required property"),
        (lambda d: d.update(colour="blue"), "'colour' was unexpected"),
        (lambda d: d.update(schema="deepsquare-bundle/9"), "schema: unknown bundle schema 'deepsquare-bundle/9'"),
    ],
)
def test_a_wrong_field_is_refused_at_load_naming_it(tmp_path: Path, change, named: str) -> None:
    sidecar = json.loads(sample_meta().to_json())
    change(sidecar)
    with pytest.raises(BundleError, match="is not a valid bundle sidecar") as caught:
        load_bundle(write_bundle(tmp_path / "b", sidecar))
    assert named in str(caught.value)
    assert schema.errors(sidecar) or "unknown bundle schema" in str(caught.value)


def test_a_nan_the_schema_lets_through_is_refused_by_hand(tmp_path: Path) -> None:
    sidecar = json.loads(sample_meta().to_json())
    sidecar["std"] = [0.5, float("nan"), 0.5]  # json.dumps writes NaN, json.loads reads it back
    with pytest.raises(BundleError, match="std: must be 3 finite numbers"):
        load_bundle(write_bundle(tmp_path / "b", sidecar))


def test_a_version_1_bundle_still_loads_as_float_input_without_golden(tmp_path: Path) -> None:
    old = json.loads(V1_SIDECAR.read_text())
    assert old["schema"] == SCHEMA_V1 and "id" not in old
    old["formats"]["coreml"] = {"file": "model.mlpackage", "layout": "image", "input_name": "image", "output_name": "p"}
    _, meta = load_bundle(write_bundle(tmp_path / "v1", old))
    assert meta.schema == SCHEMA_V1 and meta.input == "float" and meta.golden is None and meta.samples is None
    assert {name: e.input_dtype for name, e in meta.formats.items()} == {
        "onnx": "float32",
        "tflite": "float32",
        "coreml": "image",
    }
    meta.check()  # what it writes back still says /1 and follows the /1 schema
    old["classes"] = "abc"
    with pytest.raises(BundleError, match="classes: 'abc' is not of type 'array'"):
        load_bundle(write_bundle(tmp_path / "v1", old))


def test_golden_and_samples_definitions() -> None:
    golden = {
        "schema": "deepsquare-golden/1",
        "image": "golden.png",
        "label": "3",
        "reference": {"logits": [0.1, 2.0], "top5": [["b", 0.87], ["a", 0.13]]},
        "formats": {
            "onnx": {
                "outputs": "logits",
                "values": [0.1, 2.0],
                "top5": [["b", 0.87]],
                "tolerance": 2e-4,
                "measured": True,
            }
        },
    }
    assert schema.errors(golden, schema.GOLDEN) == []
    golden["formats"]["onnx"]["tolerance"] = 0
    assert schema.errors(golden, schema.GOLDEN)[0].startswith("formats.onnx.tolerance: 0 is less than or equal")
    samples = [{"file": "samples/0.png", "label": "0"}, {"file": "samples/1.png", "label": "1"}]
    assert schema.errors(samples, schema.SAMPLES) == []
    assert schema.errors([*samples] * 5, schema.SAMPLES)[0].startswith("(top level): ")  # more than 8
    assert schema.errors([{"file": "/etc/passwd", "label": "0"}], schema.SAMPLES)[0].startswith("[0].file: ")


def test_deepsquare_schema_prints_the_shipped_file_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from deepsquare.export.commands import main; code = main(['schema']); "
        "assert 'torch' not in sys.modules and 'jsonschema' not in sys.modules; sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == schema.SCHEMA_FILE.read_text()
    out = tmp_path / "s.json"
    result = subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "schema", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and json.loads(out.read_text()) == schema.bundle_schema()
