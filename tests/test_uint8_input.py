"""``deepsquare export --input uint8``: graphs that take RGB pixels, with the normalization inside.

Fast: the prologue's numbers, the pixel round trip of the parity inputs, the runners' two entry points, what
``ds.load`` feeds a uint8 bundle, one ONNX export. Slow: ONNX, TFLite and ExecuTorch bundles of one checkpoint,
float and uint8, agree on real photographs; LiteRT's CompiledModel and Interpreter agree; int8 keeps uint8 input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.export.api import export
from deepsquare.export.jobs import format_entry
from deepsquare.export.parity import compare
from deepsquare.export.prologue import PixelPrologue, as_pixel_images, pixel_batch, random_pixel_images
from deepsquare.export.request import ExportError, ExportRequest, check_request
from deepsquare.runtime.bundle import BundleMeta, FormatEntry, load_bundle
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.images import load_rgb
from deepsquare.runtime.pixels import PixelInput, normalized_of, pixels_of
from deepsquare.runtime.predictor import Predictor, load, to_uint8
from deepsquare.runtime.preprocess import normalize_nchw
from deepsquare.train import build_model
from deepsquare.train.checkpoint import normalize

PHOTOS = sorted((Path(__file__).parent / "fixtures" / "photos").glob("*.jpg"))
MEAN, STD = [0.49, 0.45, 0.41], [0.23, 0.22, 0.26]


def meta(size: int = 16, kind: str = "uint8") -> BundleMeta:
    return BundleMeta("vanilla_cnn", "gap", [str(i) for i in range(10)], size, MEAN, STD, input=kind)


def test_prologue_is_the_training_normalization_on_the_same_pixels() -> None:
    model = build_model("vanilla_cnn", "sp", num_classes=10, stem="cifar").eval()
    pixels = torch.randint(0, 256, (3, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outside = model(normalize(pixels.permute(0, 3, 1, 2).float() / 255.0, MEAN, STD))
        for pointwise in (False, True):  # multiply and add (ONNX), or a 1x1 convolution (the XNNPACK runtimes)
            inside = PixelPrologue(model, MEAN, STD, pointwise=pointwise).eval()(pixels)
            torch.testing.assert_close(inside, outside, atol=1e-5, rtol=1e-5)


def test_parity_images_are_pixels_and_come_back_exactly() -> None:
    images = torch.rand(4, 3, 8, 8)
    levels = as_pixel_images(images)
    pixels = pixel_batch(normalize(levels, MEAN, STD), MEAN, STD)
    assert pixels.dtype == torch.uint8 and pixels.shape == (4, 8, 8, 3)
    assert torch.equal(pixels.permute(0, 3, 1, 2), torch.round(images * 255).to(torch.uint8))
    random = random_pixel_images(2, 8, seed=0)
    assert torch.equal(random * 255, torch.round(random * 255))  # whole pixel levels
    # numpy's twin (runtime/pixels.py, no torch) agrees with the exporter's
    back = pixels_of(normalize(levels, MEAN, STD).numpy(), meta())
    assert np.array_equal(back, pixels.numpy())


def test_format_entries_say_what_each_graph_takes() -> None:
    for name in ("onnx", "tflite", "executorch"):
        entry = format_entry(FORMATS[name], "fp32", "uint8")
        assert (entry.input_dtype, entry.layout) == ("uint8", "NHWC")
        assert format_entry(FORMATS[name], "fp32").input_dtype == "float32"
    assert format_entry(FORMATS["coreml"], "fp16", "uint8").input_dtype == "image"  # ImageType takes pixels
    assert format_entry(FORMATS["coreml"], "fp16", "uint8").layout == "image"
    old = FormatEntry(**{"file": "model.onnx", "layout": "NCHW", "input_name": "input", "output_name": "logits"})
    assert old.input_dtype == "float32" and meta(kind="float").input == "float"


def test_bad_input_kind_is_refused_before_anything_runs(tmp_path: Path) -> None:
    request = ExportRequest(tmp_path / "missing.ckpt", ["onnx"], tmp_path / "out", input="int4")
    with pytest.raises(ExportError, match="--input must be one of float, uint8"):
        check_request(request)


class Recording(PixelInput):
    """A runner that returns what it was fed, to see each entry point's conversion."""

    def __init__(self, input_dtype: str) -> None:
        self.input_dtype, self.meta, self.fed = input_dtype, meta(), None

    def _run_float(self, batch_nchw: np.ndarray) -> np.ndarray:
        self.fed = batch_nchw
        return np.zeros((len(batch_nchw), 10), np.float32)

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        self.fed = pixels
        return np.zeros((len(pixels), 10), np.float32)


def test_runners_take_pixels_and_normalized_floats() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    float_runner, pixel_runner = Recording("float32"), Recording("uint8")
    float_runner.run_pixels(pixels)  # a float graph: normalized as predict always did
    np.testing.assert_array_equal(float_runner.fed, normalize_nchw(pixels.astype(np.float32) / 255.0, meta()))
    pixel_runner.run_pixels(pixels)  # a uint8 graph: straight in
    assert pixel_runner.fed is not None and np.array_equal(pixel_runner.fed, pixels)
    pixel_runner.run(normalized_of(pixels, meta()))  # the normalized batch of pixels: the same pixels back
    assert np.array_equal(pixel_runner.fed, pixels)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        pixel_runner.run_pixels(pixels.astype(np.float32))


def test_load_feeds_a_uint8_bundle_the_pillow_resized_pixels() -> None:
    runner = Recording("uint8")
    predictor = Predictor(Path("bundle"), FORMATS["onnx"], runner, meta(size=24))
    predictor.predict(PHOTOS[0])
    from PIL import Image

    expected = np.asarray(load_rgb(PHOTOS[0]).resize((24, 24), Image.BILINEAR))
    assert runner.fed.dtype == np.uint8 and np.array_equal(runner.fed[0], expected)
    assert np.array_equal(to_uint8(expected, 24), expected)  # pixels at the input size: left as they are
    predictor.predict_pixels(expected.astype(np.float32) / 255.0)  # float [0, 1]: back to the same pixels
    assert np.array_equal(runner.fed[0], expected)


def test_onnx_uint8_bundle(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    result = export(ckpt, to="onnx", out=tmp_path / "u8", input="uint8", samples=8, jobs=1, log=None)
    assert result.parity["onnx"]["max_abs_diff"] < 1e-3
    _, bundle = load_bundle(tmp_path / "u8")
    assert bundle.input == "uint8" and bundle.formats["onnx"].input_dtype == "uint8"
    graph_input = onnx.load(str(result.files["onnx"])).graph.input[0].type.tensor_type
    assert graph_input.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value or d.dim_param for d in graph_input.shape.dim] == ["batch", 32, 32, 3]
    model = load(tmp_path / "u8")
    assert model.runner.input_dtype == "uint8" and len(model.predict(PHOTOS[0], top=3)) == 3


# --- slow: every format ------------------------------------------------------------------------------------------
def graph_inputs(files: dict[str, Path]) -> dict[str, tuple[str, list]]:
    import onnx
    from ai_edge_litert.interpreter import Interpreter
    from executorch.runtime import Runtime

    graph = onnx.load(str(files["onnx"])).graph.input[0].type.tensor_type
    found = {"onnx": (onnx.TensorProto.DataType.Name(graph.elem_type), [d.dim_value for d in graph.shape.dim][1:])}
    detail = Interpreter(model_path=str(files["tflite"])).get_input_details()[0]
    found["tflite"] = (np.dtype(detail["dtype"]).name.upper(), [int(v) for v in detail["shape"]][1:])
    tensor = Runtime.get().load_program(files["executorch"]).load_method("forward").metadata.input_tensor_meta(0)
    found["executorch"] = ("UINT8" if int(tensor.dtype()) == 0 else str(tensor.dtype()), list(tensor.sizes())[1:])
    return found


@pytest.mark.slow
def test_uint8_bundles_match_float_bundles_on_photographs(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "shufflenetv2_x0_5", "sp+ss+sex", size=64)
    formats = ["onnx", "tflite", "executorch"]
    export(ckpt, to=formats, out=tmp_path / "float", samples=8, log=None)
    pixels = export(ckpt, to=formats, out=tmp_path / "uint8", input="uint8", samples=8, log=None)
    for name, (dtype, shape) in graph_inputs(pixels.files).items():
        assert (dtype, shape) == ("UINT8", [64, 64, 3]), name
    photos = np.stack([to_uint8(photo, 64) for photo in PHOTOS])  # Pillow's BILINEAR, as predict resizes
    for name in formats:
        float_model, pixel_model = load(tmp_path / "float", runtime=name), load(tmp_path / "uint8", runtime=name)
        assert pixel_model.runner.input_dtype == "uint8" and float_model.runner.input_dtype == "float32"
        parity = compare(name, name, "fp32", pixel_model.scores(list(photos)), float_model.scores(list(photos)))
        assert parity.passed, f"{name}: {parity.reason}"
        assert parity.top1_agreement == 1.0
    from deepsquare.runtime.runners import LiteRTRunner

    compiled = LiteRTRunner(pixels.files["tflite"], 1, load_bundle(tmp_path / "uint8")[1])
    interpreter = LiteRTRunner(pixels.files["tflite"], 1, compiled.meta, api="Interpreter")
    assert compiled.api == "CompiledModel"
    np.testing.assert_array_equal(compiled.run_pixels(photos), interpreter.run_pixels(photos))


@pytest.mark.slow
def test_int8_keeps_uint8_pixels_in(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    result = export(ckpt, to="onnx,tflite", out=tmp_path / "q", input="uint8", precision="int8", log=None)
    model = load(tmp_path / "q", runtime="tflite")
    assert model.runner.input_dtype == "uint8"
    assert model.runner.api == "CompiledModel"  # float logits out of the int8 body: CompiledModel can run it
    from deepsquare.runtime.runners import LiteRTRunner

    interpreter = LiteRTRunner(result.files["tflite"], 1, model.runner.meta, api="Interpreter")
    detail, output = interpreter.input, interpreter.output
    assert np.dtype(detail["dtype"]) == np.uint8 and detail["quantization"] == (0.0, 0)  # pixels, not numbers
    assert np.dtype(output["dtype"]) == np.float32
    assert all(result.parity[name]["top1_agreement"] >= 0.9 for name in ("onnx", "tflite"))
