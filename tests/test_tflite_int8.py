"""int8 TFLite: the quantizer's file keeps loading, and computing the same, once the bundle metadata is added."""

from pathlib import Path

import numpy as np
import pytest
import torch

from deepsquare.export.deploy import deploy_transform
from deepsquare.export.quantize import quantize_int8
from deepsquare.export.tflite_metadata import add_tflite_metadata, tflite_metadata
from deepsquare.train import build_model


def float_tflite(arch: str, folder: Path) -> Path:
    import litert_torch

    model = build_model(arch, "gap", 10, stem="cifar").eval()
    deployed, _ = deploy_transform(model, torch.randn(4, 3, 32, 32))
    nhwc = litert_torch.to_channel_last_io(deployed, args=[0]).eval()
    path = folder / "float.tflite"
    litert_torch.convert(nhwc, (torch.randn(1, 32, 32, 3),)).export(str(path))
    return path


def outputs(buf: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=buf)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    scale, zero = detail["quantization"]
    interpreter.set_tensor(detail["index"], np.clip(np.rint(x / scale + zero), -128, 127).astype(np.int8))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


@pytest.mark.parametrize("arch", ["vanilla_cnn", "shufflenetv2_x0_5"])
def test_metadata_survives_int8_buffers_stored_by_offset(tmp_path: Path, arch: str) -> None:
    quantized = quantize_int8(float_tflite(arch, tmp_path), torch.randn(16, 3, 32, 32))
    with_meta = add_tflite_metadata(quantized, {"deepsquare_bundle": b'{"a": 1}', "labels.txt": b"x\ny"})
    (tmp_path / "model.tflite").write_bytes(with_meta)
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(outputs(with_meta, x), outputs(quantized, x))  # bit for bit
    metadata = tflite_metadata(tmp_path / "model.tflite")  # the converter's own entries, then ours
    assert metadata["deepsquare_bundle"] == b'{"a": 1}' and metadata["labels.txt"] == b"x\ny"
