"""deepsquare export: deploy transform, three formats, parity gate, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.export import cli as export_cli
from deepsquare.export import jobs as export_jobs
from deepsquare.export import verify as export_verify
from deepsquare.export.coreml import ImageInputHead
from deepsquare.export.deploy import DeployError, deploy_transform
from deepsquare.export.tflite_metadata import tflite_metadata, tflite_op_names
from deepsquare.train import build_model, count_parameters
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.layers import NegSquare, SquareSoftmin
from deepsquare.train.models import SquareNet


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsquare.export.cli", *args], capture_output=True, text=True, timeout=900
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- deploy transform ---------------------------------------------------------------------
@pytest.mark.parametrize("per_class", [False, True])
def test_square_softmin_fold_equals_the_unfolded_head(per_class: bool) -> None:
    model = build_model("vanilla_cnn", "sp+ss", num_classes=7, ss_per_class=per_class).eval()
    with torch.no_grad():
        model.softmin.scale.copy_(torch.linspace(-1.5, 2.5, model.softmin.scale.numel()))
    h = torch.randn(5, 128)
    unfolded = model.softmin(model.fc(h))
    assert model.fold_square_softmin() == ("per-class" if per_class else "shared")
    assert isinstance(model.softmin, NegSquare)
    folded = model.softmin(model.fc(h))
    torch.testing.assert_close(folded, unfolded, rtol=1e-5, atol=1e-6)
    assert not any(isinstance(m, SquareSoftmin) for m in model.modules())


@pytest.mark.parametrize("arch", ["resnet18", "shufflenetv2_x0_5", "vanilla_cnn"])
def test_deploy_strips_folds_fuses_and_matches(tmp_path: Path, arch: str) -> None:
    stages = {"resnet18": ("layer3", "layer4"), "shufflenetv2_x0_5": ("stage3",), "vanilla_cnn": ("layer3",)}[arch]
    model = Checkpoint.load(write_checkpoint(tmp_path, arch, "sp+ss", {"stages": stages, "dim": 8})).build_model()
    model.train()
    x = torch.randn(4, 3, 32, 32)
    deployed, report = deploy_transform(model, x)
    assert model.training  # the caller's model keeps its mode
    assert report.stripped_branches == list(stages)
    assert report.folded_softmin == "shared" and report.removed_dropouts == 1
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in build_model(arch, "sp+ss", 10, stem="cifar").modules())
    assert report.fused_batchnorms == bns and not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())
    assert report.params_backbone == count_parameters(build_model(arch, "sp+ss", 10, stem="cifar"))
    assert report.params_deploy < report.params_backbone  # BN params folded away, the SS scale too
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), model.eval()(x), rtol=1e-4, atol=1e-4)
    assert model.dsop is not None  # the training model itself is left as it was


def test_a_wrong_fold_is_caught(tmp_path: Path, monkeypatch) -> None:
    def fold_twice(model):
        root = model.softmin.scale.detach().abs()  # s instead of sqrt(s): the scale applied twice
        with torch.no_grad():
            model.fc.weight.mul_(root[:, None])
            model.fc.bias.mul_(root)
        model.softmin = NegSquare()
        return "shared"

    monkeypatch.setattr(SquareNet, "fold_square_softmin", fold_twice)
    model = Checkpoint.load(write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")).build_model()
    with pytest.raises(DeployError, match="deploy model differs from the training model"):
        deploy_transform(model, torch.randn(4, 3, 32, 32))
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    assert export_cli.main([str(ckpt), "--to", "onnx", "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out" / "model.onnx").exists()


# --- formats ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vanilla_bundle(tmp_path_factory) -> tuple[Path, dict]:
    """vanilla_cnn sp+ss with a DSoP branch exported to every format (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("bundle")
    ckpt = write_checkpoint(tmp, "vanilla_cnn", "sp+ss", {"stages": ("layer3",), "dim": 8})
    result = export(str(ckpt), "--to", "all", "--out", str(tmp / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp / "out", json.loads((tmp / "out" / "export_report.json").read_text())


def test_all_formats_written_verified_and_described(vanilla_bundle) -> None:
    out, report = vanilla_bundle
    assert sorted(p.name for p in out.iterdir()) == [
        "export_report.json",
        "golden.json",
        "golden.png",
        "model.json",
        "model.mlpackage",
        "model.onnx",
        "model.onnx.modules.json",
        "model.pte",
        "model.schema.json",
        "model.tflite",
        "samples",
        "samples.json",
    ]
    for fmt in ("onnx", "tflite", "executorch"):
        parity = report["formats"][fmt]["parity"]
        assert parity["passed"] and parity["max_rel_diff"] < 1e-4 and parity["top1_agreement"] == 1.0
        assert parity["samples"] == 8 + 16  # the random batch + synthetic:64's 16 validation images
    coreml = report["formats"]["coreml"]
    if sys.platform != "darwin":
        assert coreml["note"].startswith("numeric parity: not run (needs macOS")
    assert coreml["structure_problems"] == [] and coreml["classifier_labels"] == 10
    # Core ML ships in float16 (what the Neural Engine runs), checked here by evaluating the deploy model in float16
    assert coreml["precision"] == "fp16" and coreml["fp16_tensors"] > 0
    assert coreml["parity"]["runtime"] == "float16-rounded" and coreml["parity"]["max_rel_diff"] < 1e-2
    assert report["formats"]["executorch"]["xnnpack_delegated"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["formats"]["coreml"]["precision"] == "fp16" and meta["formats"]["executorch"]["file"] == "model.pte"
    assert meta["formats"]["tflite"]["layout"] == "NHWC" and meta["formats"]["onnx"]["layout"] == "NCHW"
    assert meta["classes"][0] == "grating_0deg" and meta["input_size"] == 32 and len(meta["std"]) == 3
    assert report["deploy"]["stripped_branches"] == ["layer3"]


def test_onnx_metadata_dynamic_batch_and_folded_head(vanilla_bundle) -> None:
    out, _ = vanilla_bundle
    graph = onnx.load(str(out / "model.onnx"))
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["deepsquare.classes"])[3] == "grating_54deg" and props["deepsquare.variant"] == "sp+ss"
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis
    import onnxruntime as ort

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((5, 3, 32, 32), np.float32)})[0].shape == (5, 10)
    # The head after the FC is x*x then Neg: no multiply by a scale constant is left.
    nodes = list(graph.graph.node)
    gemm = next(i for i, n in enumerate(nodes) if n.op_type in ("Gemm", "MatMul"))
    tail = nodes[gemm + 1 :]
    initializers = {i.name for i in graph.graph.initializer}
    assert [n.op_type for n in tail if n.op_type != "Add"] == ["Mul", "Neg"]
    mul = next(n for n in tail if n.op_type == "Mul")
    assert mul.input[0] == mul.input[1] and not set(mul.input) & initializers


def test_tflite_is_nhwc_without_transpose_and_carries_labels(vanilla_bundle) -> None:
    out, _ = vanilla_bundle
    assert "TRANSPOSE" not in tflite_op_names(out / "model.tflite")
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out / "model.tflite"))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 32, 32, 3]
    metadata = tflite_metadata(out / "model.tflite")
    assert metadata["labels.txt"].decode().splitlines()[1] == "grating_18deg"
    assert json.loads(metadata["deepsquare_bundle"])["variant"] == "sp+ss"


def test_coreml_program_takes_an_image_and_normalizes_per_channel_inside(vanilla_bundle) -> None:
    import coremltools as ct

    out, _ = vanilla_bundle
    spec = ct.utils.load_spec(str(out / "model.mlpackage"))
    image = spec.description.input[0]
    assert image.name == "image" and image.type.WhichOneof("Type") == "imageType"
    assert (image.type.imageType.width, image.type.imageType.height) == (32, 32)
    assert spec.description.metadata.userDefined["deepsquare.arch"] == "vanilla_cnn"
    # the in-graph normalization is (x - mean) / std per channel, then softmax
    model = build_model("vanilla_cnn", num_classes=10).eval()
    mean, std = [0.2, 0.4, 0.6], [0.1, 0.2, 0.4]
    head = ImageInputHead(model, mean, std).eval()
    x = torch.rand(2, 3, 32, 32)
    expected = torch.softmax(model((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)), 1)
    torch.testing.assert_close(head(x), expected)


def test_predict_prints_top5_from_the_bundle(vanilla_bundle, tmp_path: Path) -> None:
    from PIL import Image

    out, _ = vanilla_bundle
    Image.new("RGB", (40, 30), (120, 30, 200)).save(tmp_path / "x.png")
    for fmt in ("onnx", "tflite"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "deepsquare.export.commands",
                "predict",
                str(out),
                str(tmp_path / "x.png"),
                "--to",
                fmt,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].endswith(f"({fmt}):") and len(lines) == 6 and lines[1].strip().split()[1].startswith("grating_")
    result = subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "predict", str(tmp_path), "x.png"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "model.json is missing" in result.stderr


def test_runtime_never_imports_torch() -> None:
    code = "import sys, deepsquare.runtime.runners, deepsquare.runtime.predict; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_dsop_trained_and_plain_models_give_the_same_onnx_ops(vanilla_bundle, tmp_path: Path) -> None:
    out, _ = vanilla_bundle
    plain = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    assert export(str(plain), "--to", "onnx", "--out", str(tmp_path / "plain")).returncode == 0
    ops = [
        [n.op_type for n in onnx.load(str(p)).graph.node]
        for p in (out / "model.onnx", tmp_path / "plain" / "model.onnx")
    ]
    assert ops[0] == ops[1]


@pytest.mark.parametrize("arch", ["resnet18", "shufflenetv2_x0_5"])
def test_tflite_input_is_nhwc_and_resnet_has_no_transpose(tmp_path: Path, arch: str) -> None:
    ckpt = write_checkpoint(tmp_path, arch, "sp+sex")
    result = export(str(ckpt), "--to", "tflite", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    ops = tflite_op_names(tmp_path / "out" / "model.tflite")
    from ai_edge_litert.interpreter import Interpreter

    assert list(Interpreter(model_path=str(tmp_path / "out" / "model.tflite")).get_input_details()[0]["shape"]) == [
        1,
        32,
        32,
        3,
    ]
    if arch == "resnet18":
        assert "TRANSPOSE" not in ops
    else:  # the shuffle is reshape-transpose-reshape, which XNNPACK takes (a gather would stay outside it)
        assert ops.count("GATHER") + ops.count("GATHER_ND") == 0
        # 283 ops (48 TRANSPOSE, 48 RESHAPE: 3 + 3 per shuffle and the NHWC lowering's) when this form was chosen
        # (one XNNPACK partition instead of 17; LiteRT time the same at 224 px): a new deploy form must not add ops.
        assert len(ops) <= 283 and ops.count("TRANSPOSE") <= 48


# --- the gate and bad input ---------------------------------------------------------------
def test_parity_failure_exits_nonzero_and_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    real = export_verify.compare

    def skewed(fmt, runtime, precision, got, reference):
        return real(fmt, runtime, precision, got * 1.01, reference)  # a 1% error in the runtime

    monkeypatch.setattr(export_verify, "compare", skewed)
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    out = tmp_path / "out"
    assert export_cli.main([str(ckpt), "--to", "onnx", "--out", str(out)]) == 1
    assert not (out / "model.onnx").exists() and not (out / "model.json").exists()
    report = json.loads((out / "export_report.json").read_text())
    assert not report["formats"]["onnx"]["passed"] and "exceeds" in report["formats"]["onnx"]["reason"]
    assert leftovers(out) == []


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    data = good.read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 3])
    (tmp_path / "random.ckpt").write_bytes(os.urandom(4096))
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    onnx.save(model, str(tmp_path / "model.onnx"))
    torch.save(build_model("vanilla_cnn").state_dict(), tmp_path / "state_dict.pt")
    ckpt = torch.load(good, weights_only=True)
    ckpt["spec"]["arch"] = "resnet9000"
    torch.save(ckpt, tmp_path / "unknown_arch.ckpt")

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'executed'}",))

    torch.save({"format": "deepsquare-checkpoint", "x": Payload()}, tmp_path / "evil.ckpt")
    return {
        "missing": (tmp_path / "nope.ckpt", "does not exist"),
        "truncated": (tmp_path / "truncated.ckpt", "not a readable checkpoint"),
        "random": (tmp_path / "random.ckpt", "not a readable checkpoint"),
        "onnx": (tmp_path / "model.onnx", "not a readable checkpoint"),
        "state_dict": (tmp_path / "state_dict.pt", "not a deepsquare checkpoint (found a plain state dict)"),
        "unknown_arch": (tmp_path / "unknown_arch.ckpt", "unknown arch 'resnet9000'"),
        "evil": (tmp_path / "evil.ckpt", "pickled objects that safe loading refuses (it was not run)"),
    }


def test_bad_checkpoints_are_one_clear_line_and_nothing_is_written(tmp_path: Path) -> None:
    for name, (path, message) in bad_files(tmp_path).items():
        out = tmp_path / f"out-{name}"
        result = export(str(path), "--to", "onnx", "--out", str(out))
        assert result.returncode == 1, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("deepsquare export: error: ") and message in lines[0], (
            name,
            lines,
        )
        assert "Traceback" not in result.stderr
        assert not out.exists() or sorted(p.name for p in out.iterdir()) == [], name
    assert not (tmp_path / "executed").exists()


def test_tflite_fp16_halves_the_file_and_passes_the_fp16_gate(vanilla_bundle, tmp_path: Path) -> None:
    out, report = vanilla_bundle
    result = export(report["checkpoint"], "--to", "tflite", "--precision", "fp16", "--out", str(tmp_path / "h"))
    assert result.returncode == 0, result.stdout + result.stderr
    half = json.loads((tmp_path / "h" / "export_report.json").read_text())["formats"]["tflite"]
    assert half["precision"] == "fp16" and half["parity"]["runtime"] == "litert"  # run for real, not emulated
    assert half["parity"]["passed"] and 0 < half["parity"]["max_rel_diff"] < 1e-2
    assert half["accuracy"]["images"] == 16 and abs(half["accuracy"]["delta_points"]) <= 100 / 16
    ops = tflite_op_names(tmp_path / "h" / "model.tflite")
    assert ops.count("DEQUANTIZE") >= 4  # the conv and FC weights are stored in float16
    fp32_size = (out / "model.tflite").stat().st_size
    assert 0.4 < (tmp_path / "h" / "model.tflite").stat().st_size / fp32_size < 0.6
    meta = json.loads((tmp_path / "h" / "model.json").read_text())
    assert meta["formats"]["tflite"]["precision"] == "fp16"


def test_formats_convert_in_parallel_and_in_process_alike(vanilla_bundle, tmp_path: Path) -> None:
    out, report = vanilla_bundle  # converted 2 at a time (--jobs 0: one per core; CI has 2)
    ckpt = Path(report["checkpoint"])
    result = export(str(ckpt), "--to", "tflite,onnx", "--out", str(tmp_path / "seq"), "--jobs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "at a time" not in result.stdout
    again = json.loads((tmp_path / "seq" / "export_report.json").read_text())
    assert list(again["formats"]) == ["tflite", "onnx"]  # the order asked, whatever order they finished in
    assert list(report["formats"]) == ["onnx", "coreml", "tflite", "executorch"]
    for fmt in ("onnx", "tflite"):
        assert again["formats"][fmt]["parity"]["max_abs_diff"] == report["formats"][fmt]["parity"]["max_abs_diff"]
        assert again["formats"][fmt]["op_types"] == report["formats"][fmt]["op_types"]
    assert leftovers(out) == [] and leftovers(tmp_path / "seq") == []  # no staging or per-format subfolder


def test_a_converter_process_that_dies_fails_its_format_only(tmp_path: Path) -> None:
    from export_helpers import DiesWhenUnpickled

    from deepsquare.runtime.bundle import BundleMeta

    meta = BundleMeta("vanilla_cnn", "gap", ["a"], 32, [0.5] * 3, [0.2] * 3)
    job = export_jobs.ConvertJob(
        "onnx", DiesWhenUnpickled(), torch.zeros(1, 3, 32, 32), np.zeros((1, 1)), tmp_path, meta, "fp32", None, False
    )
    [(got, outcome, _)] = list(export_jobs.run_jobs([job], workers=2, log=print))
    assert got is job and not outcome.passed
    assert (
        outcome.reason == "conversion failed: the converter's process died (a crash in native code, or out of memory)"
    )


def test_a_model_that_cannot_travel_converts_in_process(tmp_path: Path, monkeypatch, capsys) -> None:
    job = export_jobs.ConvertJob(
        "onnx", torch.nn.Identity(), torch.zeros(1), np.zeros(1), tmp_path, None, "fp32", None, False
    )
    job.deployed.kept = lambda: None  # a lambda does not pickle
    converted = []
    monkeypatch.setattr(
        export_jobs, "run_job", lambda job: (converted.append(job), (export_verify.FormatOutcome(True), 0.0))[1]
    )
    [(_, outcome, _)] = list(export_jobs.run_jobs([job], workers=2, log=print))
    assert converted == [job] and outcome.passed
    assert "cannot send the model to a worker process (AttributeError" in capsys.readouterr().out


def test_negative_jobs_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    assert export_cli.main([str(ckpt), "--to", "onnx", "--jobs", "-1", "--out", str(tmp_path / "out")]) == 1
    assert "--jobs must be >= 0 (0: one per core), got -1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_format_suggests_the_closest(tmp_path: Path) -> None:
    result = export(str(tmp_path / "x.ckpt"), "--to", "tflight")
    # refused by the parser (exit 2, with the usage line), before the checkpoint is even looked at
    assert result.returncode == 2 and "unknown format 'tflight' (did you mean 'tflite'?)" in result.stderr


def test_unwritable_out_is_refused(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    (tmp_path / "file").write_text("x")
    result = export(str(ckpt), "--to", "onnx", "--out", str(tmp_path / "file" / "out"))
    assert result.returncode == 1 and "cannot write to --out" in result.stderr and "Traceback" not in result.stderr


def test_missing_converter_names_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    monkeypatch.setitem(sys.modules, "coremltools", None)  # as if not installed
    assert export_cli.main([str(ckpt), "--to", "coreml", "--out", str(tmp_path / "out")]) == 1
    assert "coremltools is not installed: pip install 'deepsquare[coreml]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_shufflenet_onnx_shuffles_with_one_gather_and_no_transpose(tmp_path: Path) -> None:
    from deepsquare.train.models.shufflenetv2 import channel_shuffle, channel_shuffle_index_select

    x = torch.randn(2, 48, 5, 5)
    assert torch.equal(channel_shuffle(x, 2), channel_shuffle_index_select(x, 2))  # the same numbers, bit for bit
    ckpt = write_checkpoint(tmp_path, "shufflenetv2_x0_5", "sp+sex")
    result = export(str(ckpt), "--to", "onnx", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    ops = [n.op_type for n in onnx.load(str(tmp_path / "out" / "model.onnx")).graph.node]
    assert "Transpose" not in ops and "GatherND" not in ops and ops.count("Gather") == 16
    # SEx squeezes with ReduceMean: an AveragePool over the whole map ran faster in ONNX Runtime on an AVX2 CPU
    # (1.10x GAP vs 1.12x) but far slower on AVX-512 (1.23x vs 1.10x); README, "Latency".
    assert ops.count("AveragePool") == 0 and ops.count("ReduceMean") == 16 + 1
