"""The app cores' golden files (apps/testdata/golden) agree with the Python runtime today."""

import json
from pathlib import Path

import numpy as np
from conftest import FIXTURES

from deepsquare.runtime import images
from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.preprocess import normalize_nchw

GOLDEN = Path(__file__).parents[1] / "apps" / "testdata" / "golden"


def test_golden_pixels_and_tensors_are_the_runtime_preprocessing():
    golden = json.loads((GOLDEN / "golden.json").read_text())
    meta = BundleMeta.from_dict(json.loads((GOLDEN / "model.json").read_text()))
    size = golden["bundle"]["input_size"]
    assert size == meta.input_size and golden["bundle"]["classes"] == meta.classes
    assert len(golden["photos"]) == 4
    for photo in golden["photos"]:
        source = FIXTURES / "photos" / photo["source"]
        decoded = np.asarray(images.load_rgb(source))
        np.testing.assert_array_equal(np.asarray(images.load_rgb(GOLDEN / photo["png"])), decoded)
        resized = np.frombuffer((GOLDEN / photo["resized_rgb"]).read_bytes(), np.uint8).reshape(size, size, 3)
        np.testing.assert_array_equal(resized, np.rint(images.load_image(source, size) * 255).astype(np.uint8))
        tensor = np.frombuffer((GOLDEN / photo["tensor_nhwc"]).read_bytes(), "<f4").reshape(1, size, size, 3)
        want = normalize_nchw(images.load_image(source, size)[None], meta).transpose(0, 2, 3, 1)
        np.testing.assert_array_equal(tensor, want)


def test_golden_top5_follows_from_the_logits():
    golden = json.loads((GOLDEN / "golden.json").read_text())
    for photo in golden["photos"]:
        logits = np.asarray(photo["logits"], np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        np.testing.assert_allclose(photo["probabilities"], probs, rtol=1e-12)
        order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:5]
        assert [t["index"] for t in photo["top5"]] == order
        assert [t["label"] for t in photo["top5"]] == [golden["bundle"]["classes"][i] for i in order]


BUNDLE = Path(__file__).parents[1] / "apps" / "testdata" / "bundle"  # a real bundle's contract files, no models


def test_the_apps_bundle_files_follow_the_shipped_schema():
    from PIL import Image

    from deepsquare.runtime import schema

    sidecar = json.loads((BUNDLE / "model.json").read_text())
    assert schema.errors(sidecar) == [] and sidecar["schema"] == "deepsquare-bundle/2"
    assert sidecar == json.loads((GOLDEN / "model.json").read_text())  # the photos' golden files: the same bundle
    # The copy in the bundle is the schema this deepsquare ships: a changed schema means regenerating these files.
    assert (BUNDLE / "model.schema.json").read_text() == schema.SCHEMA_FILE.read_text()
    meta = BundleMeta.from_dict(sidecar)
    golden = json.loads((BUNDLE / meta.golden).read_text())
    assert schema.errors(golden, schema.GOLDEN) == [] and golden["label"] in meta.classes
    with Image.open(BUNDLE / golden["image"]) as image:
        assert image.mode == "RGB" and image.size == (meta.input_size, meta.input_size)
    assert set(golden["formats"]) == set(meta.formats)
    reference = np.asarray(golden["reference"]["logits"], np.float64)
    for name, entry in golden["formats"].items():
        assert entry["measured"] and entry["outputs"] == "logits", name  # ONNX and TFLite run where it was made
        assert np.abs(np.asarray(entry["values"]) - reference).max() <= entry["tolerance"], name
    samples = json.loads((BUNDLE / meta.samples).read_text())
    assert schema.errors(samples, schema.SAMPLES) == [] and len({s["label"] for s in samples}) == len(samples)
    for sample in samples:
        assert sample["label"] in meta.classes
        with Image.open(BUNDLE / sample["file"]) as image:
            assert image.mode == "RGB" and image.size == (meta.input_size, meta.input_size)
