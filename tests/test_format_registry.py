"""One table of formats: a new format is one row plus one converter function, and every part follows."""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from export_helpers import write_checkpoint

from deepsquare.export import bench
from deepsquare.export.converters import CONVERTERS, export_onnx
from deepsquare.export.parity import TOLERANCES
from deepsquare.export.pipeline import ExportError, ExportRequest, check_request, parse_formats, run_export
from deepsquare.runtime.formats import FORMATS, by_runtime
from deepsquare.runtime.runners import RUNNERS, OnnxRunner, open_runner


def test_every_format_has_a_converter_and_a_consistent_row() -> None:
    assert set(CONVERTERS) == set(FORMATS)
    for name, fmt in FORMATS.items():
        assert (
            fmt.name == name and set(fmt.precisions) <= set(TOLERANCES) and fmt.outputs in {"logits", "probabilities"}
        )
        assert by_runtime(fmt.runtime) is fmt


@pytest.fixture
def alt_format(monkeypatch):
    """A test-only format: ONNX again under another file name and runtime name. The three lines below are
    everything a new format needs; the pipeline, model.json, open_runner and the bench take it from there."""
    row = dataclasses.replace(FORMATS["onnx"], name="alt", file="model.alt.onnx", runtime="onnxruntime-alt")

    def export_alt(model, example, folder, meta, **kwargs):
        info = export_onnx(model, example, folder, meta, **kwargs)
        (folder / "model.onnx").rename(folder / "model.alt.onnx")
        return {**info, "file": "model.alt.onnx"}

    monkeypatch.setitem(FORMATS, "alt", row)  # 1: the table row
    monkeypatch.setitem(RUNNERS, "onnxruntime-alt", lambda path, meta, threads: OnnxRunner(path, threads))  # 2: runner
    monkeypatch.setitem(CONVERTERS, "alt", export_alt)  # 3: the converter
    return row


def test_a_new_format_is_one_row_and_one_converter(tmp_path: Path, alt_format) -> None:
    assert parse_formats("all") == ["onnx", "coreml", "tflite", "executorch", "alt"]
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    ok, report = run_export(ExportRequest(ckpt, ["alt"], tmp_path / "out"), log=lambda m: None)
    assert ok and report["formats"]["alt"]["parity"]["max_rel_diff"] < 1e-4
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    assert meta["formats"] == {
        "alt": {
            "file": "model.alt.onnx",
            "layout": "NCHW",
            "input_name": "input",
            "output_name": "logits",
            "precision": "fp32",
            "extra": {"outputs": "logits"},
            "input_dtype": "float32",
        }
    }
    runner, _ = open_runner(tmp_path / "out", "alt")
    assert runner.run(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)
    args = argparse.Namespace(
        to=["alt"], precision=None, threads=[1], runs=2, warmup=0, time_budget=None, arch=None, variants=None
    )
    assert bench.plan_from_args(args).runtimes == ("onnxruntime-alt",)
    model = bench.bundle_model(tmp_path / "out", {"alt"})
    assert model.files == {"alt": tmp_path / "out" / "model.alt.onnx"}


def test_precision_is_checked_against_the_table_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="precision 'fp16' is offered by none of onnx, executorch"):
        check_request(ExportRequest(tmp_path / "missing.ckpt", ["onnx", "executorch"], tmp_path / "out", "fp16"))
    assert not (tmp_path / "out").exists()


def test_all_cannot_be_combined_with_names() -> None:
    with pytest.raises(ExportError, match="give 'all' alone"):
        parse_formats("all,onnx")


def test_coreml_fp32_on_request_and_the_table_default_otherwise(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    ok, report = run_export(ExportRequest(ckpt, ["coreml", "onnx"], tmp_path / "out", "fp32"), log=lambda m: None)
    assert (
        ok and report["formats"]["coreml"]["precision"] == "fp32" and report["formats"]["coreml"]["fp16_tensors"] == 0
    )
    assert report["formats"]["onnx"]["precision"] == "fp32"
