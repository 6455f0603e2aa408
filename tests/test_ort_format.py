"""``--to ort``: ONNX Runtime's mobile format, its required-operators config, a fixed-shape graph the mobile
execution providers take whole (by ONNX Runtime's own checker), behind the same parity gate as the ONNX file."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.runtime.formats import FORMATS, parse_format_names
from deepsquare.train.layers import NegSquare
from deepsquare.train.models.shufflenetv2 import channel_shuffle, channel_shuffle_transpose


def test_ort_is_asked_for_by_name_not_by_all() -> None:
    assert "ort" not in parse_format_names("all")
    assert parse_format_names("onnx,ort") == ["onnx", "ort"]
    assert FORMATS["ort"].companions == ("model.required_operators.config",)


def test_the_mobile_forms_compute_the_same_bits() -> None:
    x = torch.randn(2, 48, 7, 7)
    assert torch.equal(channel_shuffle(x, 2), channel_shuffle_transpose(x, 2))
    layer = NegSquare()
    reference = layer(x)
    layer.use_format("ort")
    assert torch.equal(layer(x), reference)


def test_export_ort_writes_a_fixed_shape_file_that_passes_parity(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from deepsquare.export.pipeline import ExportRequest, export_bundle
    from deepsquare.runtime.runners import open_runner

    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    out = tmp_path / "bundle"
    done = export_bundle(ExportRequest(ckpt, ["ort"], out, samples=0, jobs=1), log=lambda line: None)
    assert done.ok
    record = done.report["formats"]["ort"]
    assert record["parity"]["passed"] and record["parity"]["max_rel_diff"] < 1e-4
    meta = json.loads((out / "model.json").read_text())
    assert meta["formats"]["ort"]["file"] == "model.ort"
    config = (out / "model.required_operators.config").read_text()
    assert "ai.onnx;" in config and "Conv" in config  # what a reduced ORT build must keep
    session = ort.InferenceSession(str(out / "model.ort"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 32, 32]  # fixed: the mobile EPs take no dynamic dimension
    runner, _ = open_runner(out, "ort")
    assert runner.run(np.zeros((3, 3, 32, 32), np.float32)).shape == (3, 10)  # batches run one image at a time
    mobile = record["delegation"]["mobile"]
    assert mobile["dynamic_inputs"] == []
    for ep in ("NNAPI", "CoreML MLProgram"):  # the goal: one partition with every node
        found = mobile[ep]["as_is"]
        assert found["partitions"] == 1 and found["supported"] == found["nodes"], (ep, found)
    assert sum(record["delegation"]["providers"].values()) == record["delegation"]["nodes_optimized"]
