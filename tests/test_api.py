"""The Python API: ds.train -> ds.export -> ds.load(...).predict, the documented one-liner, failures as exceptions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from export_helpers import write_checkpoint

import deepsquare as ds
from deepsquare.export import converters
from deepsquare.runtime.bundle import BundleError
from deepsquare.runtime.runners import open_runner

PHOTO = Path(__file__).parent / "fixtures" / "photos" / "chelsea.jpg"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> ds.TrainResult:
    out = tmp_path_factory.mktemp("api") / "run"
    return ds.train(
        arch="vanilla_cnn", variant="sp+ss", data="synthetic:128", epochs=1, batch_size=32, input_size=16, out=out
    )


def test_train_returns_the_checkpoint_and_its_metrics(trained: ds.TrainResult) -> None:
    assert trained.checkpoint == trained.out / "model.ckpt" and trained.checkpoint.is_file()
    assert len(trained.metrics) == 1 and float(trained.final["val_top1"]) >= 0
    assert (trained.out / "metrics.csv").is_file()
    with pytest.raises(TypeError, match="unknown training setting"):
        ds.train(arch="vanilla_cnn", epochz=3)


def test_export_then_load_and_predict(trained: ds.TrainResult, tmp_path: Path) -> None:
    result = ds.export(trained.checkpoint, to=["onnx"], out=tmp_path / "bundle", log=None)
    assert result.ok and result.files == {"onnx": tmp_path / "bundle" / "model.onnx"}
    assert result.sizes["onnx"] == (tmp_path / "bundle" / "model.onnx").stat().st_size
    assert result.parity["onnx"]["top1_agreement"] == 1.0 and result.parity["onnx"]["max_abs_diff"] < 1e-3
    model = ds.load(result.out)
    assert model.format == "onnx" and model.runtime == "onnxruntime" and len(model.classes) == 10
    top = model.predict(PHOTO, top=3)
    assert [type(p) for p in top] == [ds.Prediction] * 3
    assert top[0].probability >= top[1].probability >= top[2].probability and sum(p.probability for p in top) <= 1
    # The same answer as the runner fed the documented preprocessing by hand.
    from deepsquare.runtime.images import load_image
    from deepsquare.runtime.preprocess import normalize_nchw

    runner, meta = open_runner(result.out, "onnx")
    logits = runner.run(normalize_nchw(load_image(PHOTO, meta.input_size)[None], meta))[0]
    assert top[0].label == meta.classes[int(np.argmax(logits))]
    from PIL import Image

    with Image.open(PHOTO) as image:  # a PIL image and a uint8 array give the path's answer
        assert model.predict(image.convert("RGB"), top=3) == top
        assert model.predict(np.asarray(image.convert("RGB")), top=3) == top
    with pytest.raises(BundleError, match="has no tflite model"):
        ds.load(result.out, runtime="litert")
    with pytest.raises(BundleError, match="unknown runtime or format 'tensorrt'"):
        ds.load(result.out, runtime="tensorrt")


def test_a_failed_format_raises_with_what_passed(trained: ds.TrainResult, tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("converter exploded")

    monkeypatch.setitem(converters.CONVERTERS, "tflite", broken)
    with pytest.raises(ds.ExportFailed, match="export failed for tflite") as failure:
        ds.export(trained.checkpoint, to="onnx,tflite", out=tmp_path / "bundle", jobs=1, log=None)
    result = failure.value.result
    assert not result.ok and result.failed == ["tflite"] and result.parity["onnx"]["passed"]
    assert result.files == {} and not (tmp_path / "bundle" / "model.onnx").exists()  # all or nothing


def test_the_documented_one_liner_runs_as_written(trained: ds.TrainResult, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    shutil.copy(trained.checkpoint, tmp_path / "run" / "model.ckpt")
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    code = (
        "import deepsquare as ds; r = ds.export('run/model.ckpt', to=['onnx'], out='b'); "
        "print(ds.load('b').predict('photo.jpg'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("[Prediction(label='grating_")


def test_bench_from_python(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp")
    result = ds.bench([ckpt], to=["onnx"], runs=3, warmup=1, out=tmp_path / "bench", progress=False)
    assert (tmp_path / "bench" / "bench.json").is_file() and (tmp_path / "bench" / "bench.md").is_file()
    assert {r["runtime"] for r in result.records} == {"onnxruntime"} and result.ratios


def test_a_model_json_with_the_wrong_class_count_is_one_clear_error(trained: ds.TrainResult, tmp_path: Path) -> None:
    import json

    result = ds.export(trained.checkpoint, to=["onnx"], out=tmp_path / "bundle", log=None)
    meta = json.loads((result.out / "model.json").read_text())
    meta["classes"] = meta["classes"][:5]  # 5 labels for a 10-output model
    (result.out / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"gives 10 scores but model\.json lists 5 classes"):
        ds.load(result.out).predict(PHOTO)
    done = subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "predict", str(result.out), str(PHOTO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr and "lists 5 classes" in done.stderr
