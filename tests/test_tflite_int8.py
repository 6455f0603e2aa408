"""int8 TFLite (export/quantize_tflite.py): kept modules compute in float, every ShuffleNetV2 variant's file runs in
LiteRT's XNNPACK, and the file keeps loading, and computing the same, once the bundle metadata is added."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepsquare.export.deploy import deploy_transform
from deepsquare.export.module_scopes import tflite_scopes
from deepsquare.export.quantize_tflite import exact, kept_scopes, quantize_int8
from deepsquare.export.tflite_metadata import add_tflite_metadata, tflite_metadata
from deepsquare.runtime.probe import crash_reason, error_line
from deepsquare.train import build_model

INTERPRETER_RUN = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)  # XNNPACK applied at allocation, or an error
interpreter.allocate_tensors()
detail = interpreter.get_input_details()[0]
interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
interpreter.invoke()
"""


def float_tflite(arch: str, folder: Path, variant: str = "gap") -> Path:
    import litert_torch

    torch.manual_seed(0)
    model = build_model(arch, variant, 10, stem="cifar").eval()
    deployed, _ = deploy_transform(model, torch.randn(4, 3, 32, 32))
    nhwc = litert_torch.to_channel_last_io(deployed.for_format("tflite"), args=[0]).eval()
    path = folder / "float.tflite"
    litert_torch.convert(nhwc, (torch.randn(1, 32, 32, 3),)).export(str(path))
    return path


def outputs(buf: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=buf)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def ops_with_types(buf: bytes) -> list[tuple[str, list[str], str, list[str]]]:
    """(op, module paths, output dtype, input dtypes) for every op of a .tflite file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=buf)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():
        out = tensors[int(op["outputs"][0])]
        ins = [np.dtype(tensors[int(i)]["dtype"]).name for i in op["inputs"] if i >= 0]
        found.append((op["op_name"], tflite_scopes(out["name"]), np.dtype(out["dtype"]).name, ins))
    return found


def test_error_line_names_the_error_not_the_exit_logs() -> None:
    stderr = (
        "INFO: [cpu_registry.cc:75] XNNPACK CPU accelerator registered.\n"
        "RuntimeError: failed to create XNNPACK runtimeNode number 249 (TfLiteXNNPackDelegate) failed to prepare.\n"
        "INFO: [accelerator_registry.cc:43] DestroyAccelerator: ptr=0x5, name=CpuAccelerator\n"
    )
    assert error_line(stderr, 1).startswith("RuntimeError: failed to create XNNPACK runtime")
    assert error_line("", 3) == "exit status 3"


def test_exact_matches_each_scope_whole_and_nothing_else() -> None:
    """The kept ops' scopes as one pattern: litert_torch scopes share long prefixes, and ``re`` caches 512 patterns."""
    scopes = [f"Wrapper/Net_model/Sequential_stage{i}/Conv2d_0;1;" for i in range(700)]
    pattern = re.compile(exact(scopes[:600]) or "")
    assert all(pattern.search(scope) for scope in scopes[:600])
    assert not any(pattern.search(scope) for scope in scopes[600:])
    assert not pattern.search(scopes[5][:-2]) and not pattern.search("x" + scopes[5])
    assert exact([]) is None


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vanilla_cnn", "shufflenetv2_x0_5"])
def test_metadata_survives_int8_buffers_stored_by_offset(tmp_path: Path, arch: str) -> None:
    quantized = quantize_int8(float_tflite(arch, tmp_path), torch.randn(16, 3, 32, 32))
    with_meta = add_tflite_metadata(quantized, {"deepsquare_bundle": b'{"a": 1}', "labels.txt": b"x\ny"})
    (tmp_path / "model.tflite").write_bytes(with_meta)
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(outputs(with_meta, x), outputs(quantized, x))  # bit for bit
    metadata = tflite_metadata(tmp_path / "model.tflite")  # the converter's own entries, then ours
    assert metadata["deepsquare_bundle"] == b'{"a": 1}' and metadata["labels.txt"] == b"x\ny"


@pytest.mark.slow
def test_kept_modules_compute_in_float(tmp_path: Path) -> None:
    path = float_tflite("shufflenetv2_x0_5", tmp_path)
    kept = ("stage2.1", "fc")
    assert len(kept_scopes(path, kept)) >= 5  # the block's convolutions, slices, concat, shuffle; the classifier
    ops = ops_with_types(quantize_int8(path, torch.randn(16, 3, 32, 32), keep_float=kept))
    computing = [op for op in ops if op[0] not in ("QUANTIZE", "DEQUANTIZE")]
    inside = [op for op in computing if op[1] and any(m == "stage2.1" or m.startswith("stage2.1.") for m in op[1])]
    convs = [op for op in inside if op[0] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == 3 and all(op[2] == "float32" and set(op[3]) == {"float32"} for op in convs)
    others = [op for op in computing if op[0] == "CONV_2D" and op not in inside and op[1][0].startswith("stage3")]
    assert others and all(op[2] == "int8" for op in others)  # the rest stays int8
    classifier = [op for op in computing if op[0] == "FULLY_CONNECTED"]
    assert len(classifier) == 1 and set(classifier[0][3]) == {"float32"}  # float weights too


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["se", "sen"])
def test_int8_shufflenet_attention_variants_run_in_xnnpack(tmp_path: Path, variant: str) -> None:
    """LiteRT's XNNPACK refused int8 ``se`` (a 1x1 convolution with one output channel, the SE squeeze of a 24-channel
    block): the Interpreter, which runs XNNPACK or fails, opens and runs the file in a child process."""
    path = float_tflite("shufflenetv2_x0_5", tmp_path, variant)
    (tmp_path / "int8.tflite").write_bytes(quantize_int8(path, torch.randn(16, 3, 32, 32)))
    assert crash_reason("tflite", tmp_path / "int8.tflite", None, 1, 32) is None  # the runner's own way
    done = subprocess.run([sys.executable, "-c", INTERPRETER_RUN, str(tmp_path / "int8.tflite")], capture_output=True)
    assert done.returncode == 0, error_line(done.stderr.decode(), done.returncode)
