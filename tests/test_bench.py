"""deepsquare bench: MAC and elementwise counts, interleaving, ratios, checkpoints and bundles, and tiny
end-to-end runs (no timing asserted)."""

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from export_helpers import write_checkpoint

from deepsquare.export import bench, bench_run
from deepsquare.export.complexity import count_macs, count_ops
from deepsquare.export.deploy import deploy_transform
from deepsquare.export.pipeline import ExportRequest, run_export
from deepsquare.runtime import bench_plan, bench_report, latency, timing
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.records import BenchRecord
from deepsquare.runtime.runners import RUNNERS
from deepsquare.train import build_model


def test_macs_of_the_vanilla_cnn_by_hand() -> None:
    # Table 1 at 32x32: three 3x3 stride-2 convs (16x16x32, 8x8x64, 4x4x128 outputs), FC 128 -> 10.
    by_hand = 16 * 16 * 32 * (3 * 9) + 8 * 8 * 64 * (32 * 9) + 4 * 4 * 128 * (64 * 9) + 128 * 10
    assert by_hand == 2_581_760
    assert count_macs(build_model("vanilla_cnn", num_classes=10), 32) == by_hand


def deployed(arch: str, variant: str, size: int, num_classes: int = 10):
    model = build_model(arch, variant, num_classes, stem="cifar" if size <= 64 else "imagenet")
    return deploy_transform(model.eval(), torch.randn(2, 3, size, size))[0]


def test_elementwise_ops_of_the_vanilla_cnn_by_hand() -> None:
    # Deploy form (BN fused into the convs): three ReLUs on 16x16x32, 8x8x64, 4x4x128, then pooling.
    relus = 16 * 16 * 32 + 8 * 8 * 64 + 4 * 4 * 128
    gap = count_ops(deployed("vanilla_cnn", "gap", 32), 32)
    assert gap.elementwise_by_op == {"relu": relus, "mean": 2048}
    # Square-Pooling squares the 4x4x128 map before the mean: +2048.
    assert count_ops(deployed("vanilla_cnn", "sp", 32), 32).elementwise_by_op == {
        "relu": relus,
        "mul": 2048,
        "mean": 2048,
    }
    # Square-Softmin (|s| folded into the FC) is -(z*z) on the 10 logits: +20; no scale multiply is left.
    assert count_ops(deployed("vanilla_cnn", "ss", 32), 32).elementwise == gap.elementwise + 20
    assert gap.macs == 2_581_760


def test_se_costs_a_pool_a_sigmoid_and_a_scale_per_block() -> None:
    # ResNet-18 at 32x32 (cifar stem): SE pools and rescales every block's output once.
    gap = count_ops(deployed("resnet18", "gap", 32), 32)
    se = count_ops(deployed("resnet18", "se", 32), 32)
    block_outputs = 2 * (64 * 32 * 32 + 128 * 16 * 16 + 256 * 8 * 8 + 512 * 4 * 4)
    assert se.elementwise_by_op["mul"] == block_outputs
    assert se.elementwise_by_op["mean"] - gap.elementwise_by_op["mean"] == block_outputs
    hidden = 2 * (64 + 128 + 256 + 512) // 16
    assert se.elementwise_by_op["sigmoid"] == 2 * (64 + 128 + 256 + 512)
    assert se.elementwise_by_op["relu"] - gap.elementwise_by_op["relu"] == hidden
    assert se.macs - gap.macs == 2 * 2 * sum(c * (c // 16) for c in (64, 128, 256, 512))


def test_macs_of_resnet18_match_the_known_figure() -> None:
    # ResNet-18 at 224x224 is the well-known 1.82 GMACs (1,814,073,344 counting convs and the FC).
    assert count_macs(build_model("resnet18"), 224) == 1_814_073_344


def test_ratio_interval_is_the_geometric_mean_of_paired_rounds() -> None:
    ratio, low, high = timing.ratio_interval([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert (ratio, low, high) == (2.0, 2.0, 2.0)
    ratio, low, high = timing.ratio_interval([1.1, 0.9, 1.2, 1.0], [1.0, 1.0, 1.0, 1.0])
    assert low < ratio < high and ratio == pytest.approx(math.exp(np.mean(np.log([1.1, 0.9, 1.2, 1.0]))))


class FakeRunner:
    """Records which model ran; the bench only needs run() and init_s."""

    calls: ClassVar[list[str]] = []
    created: ClassVar[list[str]] = []

    def __init__(self, path, threads) -> None:
        self.name, self.init_s = Path(path).parent.name, 0.001
        FakeRunner.created.append(self.name)

    def run(self, x):
        FakeRunner.calls.append(self.name)
        return np.zeros((1, 10), np.float32)


def use_runner(monkeypatch, runner_class) -> None:
    """Time ONNX models with ``runner_class(path, threads)``: the format table is the injection point."""
    monkeypatch.setitem(RUNNERS, "onnxruntime", lambda path, meta, threads: runner_class(path, threads))
    monkeypatch.setattr(latency, "PROBE_IN_CHILD", False)  # the injected runner exists in this process only


def fake_args(**overrides):
    args = dict(
        arch="vanilla_cnn",
        variants="sp,ss",
        to=["onnx"],
        precision=None,
        threads=[1],
        input_size=16,
        num_classes=10,
        runs=3,
        warmup=1,
        time_budget=None,
        models=[],
    )
    return argparse.Namespace(**{**args, **overrides})


def test_variants_are_timed_interleaved_in_rotating_order(monkeypatch) -> None:
    FakeRunner.calls, FakeRunner.created = [], []
    use_runner(monkeypatch, FakeRunner)
    result = bench_run.run_bench(fake_args(runs=6), progress=False)
    g, a, b = "00", "01", "02"  # gap is added first
    # Each file is first opened and run once (a file the runtime refuses is left out, not the table); then
    # three blocks of two rounds; each block creates the sessions anew in rotated order, warms them up
    # (one round), then times rounds whose order rotates too: every model in every position equally often.
    probe = [g, a, b]
    assert FakeRunner.created == [*probe, g, a, b, a, b, g, b, g, a]
    warm = [g, a, b]
    assert FakeRunner.calls == [*probe, *warm, g, a, b, a, b, g, *warm, b, g, a, g, a, b, *warm, a, b, g, b, g, a]
    assert [r["name"] for r in result["ratios"]] == ["gap", "sp", "ss"]
    assert all(r["baseline"] == "gap" and r["runs"] == 6 for r in result["ratios"])
    records = [BenchRecord.from_dict(r) for r in result["records"]]
    assert all(r.runs == 6 and r.warmup == 1 and r.runtime == "onnxruntime" for r in records)
    assert result["ratios"][0]["ci95"] == [1.0, 1.0]  # gap against itself


@pytest.mark.parametrize(("models", "runs", "blocks"), [(3, 7, [3, 2, 2]), (7, 3, [1, 1, 1]), (1, 5, [5])])
def test_rounds_are_split_into_blocks(models: int, runs: int, blocks: list[int]) -> None:
    assert timing.block_plan(models, timing.TimingPlan(runs=runs)) == blocks


class SleepyRunner(FakeRunner):
    def run(self, x):
        time.sleep(0.004)
        return super().run(x)


def test_time_budget_replaces_the_run_count(monkeypatch) -> None:
    FakeRunner.calls = []
    use_runner(monkeypatch, SleepyRunner)
    result = bench_run.run_bench(fake_args(runs=1000, warmup=0, time_budget=0.05), progress=False)
    rounds = {r["runs"] for r in result["ratios"]}
    # 3 blocks of 0.05/3 s, rounds of 3 x 4 ms: about 2 rounds a block; whole rounds, the same for every model.
    assert len(rounds) == 1 and 3 <= rounds.pop() <= 9
    assert len(FakeRunner.calls) % 3 == 0
    assert result["time_budget_s"] == 0.05 and result["runs"] is None
    assert "0.05 s of interleaved rounds per cell" in bench_report.markdown_table(result)


def test_checkpoints_and_bundles_are_timed_with_their_cost(tmp_path: Path, monkeypatch) -> None:
    FakeRunner.calls = []
    gap_ckpt = write_checkpoint(tmp_path / "gap", "vanilla_cnn", "gap")
    sq_ckpt = write_checkpoint(tmp_path / "sq", "vanilla_cnn", "sp+ss")
    ok, _ = run_export(ExportRequest(sq_ckpt, ["onnx"], tmp_path / "sq" / "export"), log=lambda m: None)
    assert ok
    use_runner(monkeypatch, FakeRunner)  # after the export: its parity gate runs the real ONNX Runtime
    meta = json.loads((tmp_path / "sq" / "export" / "model.json").read_text())
    deploy_model = deployed("vanilla_cnn", "sp+ss", 32)
    expected = count_ops(deploy_model, 32)
    assert meta["provenance"]["cost"] == {
        "params": sum(p.numel() for p in deploy_model.parameters()),
        "macs": expected.macs,
        "elementwise": expected.elementwise,
    }
    args = fake_args(arch=None, variants=None, models=[str(gap_ckpt), str(tmp_path / "sq" / "export")])
    result = bench_run.run_bench(args, progress=False)
    rows = {r["name"]: r for r in result["ratios"]}
    assert set(rows) == {"gap", "sp+ss"} and rows["sp+ss"]["baseline"] == "gap"
    assert rows["sp+ss"]["source"] == str(tmp_path / "sq" / "export") and rows["gap"]["source"] == str(gap_ckpt)
    assert rows["sp+ss"]["macs"] == expected.macs == rows["gap"]["macs"]
    assert rows["sp+ss"]["elementwise"] - rows["gap"]["elementwise"] == 2048 + 20  # the square pool and the head
    assert {r["input_size"] for r in rows.values()} == {32}


def test_a_bundle_without_the_runtimes_format_is_one_line(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    assert run_export(ExportRequest(ckpt, ["onnx"], tmp_path / "export"), log=lambda m: None)[0]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.export.commands",
            "bench",
            str(tmp_path / "export"),
            "--to",
            "tflite",
            "--quiet",
            "--out",
            str(tmp_path / "bench"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"deepsquare bench: error: bundle {tmp_path / 'export'} has no tflite model (it has: onnx); choose other --to"
    ]
    assert not (tmp_path / "bench" / "bench.json").exists()


def test_tiny_bench_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.export.commands",
            "bench",
            "--arch",
            "vanilla_cnn",
            "--variant",
            "gap,sp+ss",
            "--input-size",
            "16",
            "--num-classes",
            "10",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bench-cache.json",
        "bench.csv",
        "bench.json",
        "bench.md",
        "bench.png",
    ]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {(r["variant"], r["runtime"]) for r in data["records"]} == {
        (v, rt) for v in ("gap", "sp+ss") for rt in ("onnxruntime", "litert")
    }
    assert "| vanilla_cnn | 16 | sp+ss | litert | 1 |" in result.stdout
    header = (tmp_path / "bench.csv").read_text().splitlines()[0]
    assert header == ",".join(bench_report.CSV_FIELDS)
    assert header.startswith("arch,input_size,name,variant,runtime,threads")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--arch", "resnet7"], "resnet7"),
        (["/nonexistent/model.ckpt"], "/nonexistent/model.ckpt does not exist"),
        (["/"], "/ is a folder without model.json: not a bundle written by deepsquare export"),
        (
            ["--to", "onnx,executorch", "--precision", "fp16"],
            "precision 'fp16' is offered by none of the timed runtimes (onnxruntime: fp32, "
            "int8; executorch: fp32, int8); choose other --precision or --to",
        ),
    ],
)
def test_bad_requests_are_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.export.commands",
            "bench",
            *flags,
            "--quiet",
            "--out",
            str(tmp_path / "bench"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepsquare bench: error:") and message in lines[0], lines
    assert not (tmp_path / "bench" / "bench.json").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--to", "tensorrt"], "unknown format 'tensorrt'"),
        (["--to", "coreml"], "coreml cannot be timed on this machine"),
        (["--threads", "1,x"], "expected a comma list of whole numbers, got '1,x'"),
        (["--threads", "0"], "--threads must be between 1 and"),
        (["--precision", "fp32,int4"], "'int4' is not a precision; choose from fp32, int8, fp16"),
        (["--runs", "1"], "--runs must be >= 2"),
    ],
)
def test_bad_flags_are_refused_before_any_work(tmp_path: Path, flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "bench", *flags, "--quiet", "--out", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code = 1 if "coreml" in flags else 2  # 2: argparse's usage error; 1: a request refused by the bench
    assert result.returncode == code and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "b").exists()


def test_records_measured_elsewhere_join_the_report(tmp_path: Path, monkeypatch) -> None:
    from deepsquare.runtime.benchmark_model import parse_benchmark_output
    from deepsquare.runtime.records import dump_records

    fixture = Path(__file__).resolve().parent / "fixtures" / "benchmark_model"
    phone = parse_benchmark_output((fixture / "android_logcat_percentiles.txt").read_text()).record(
        model="model.tflite", variant="sp+sex", machine="Pixel 7 (abc123)"
    )
    phone.threads, phone.extra["use_gpu"] = 4, True
    records = tmp_path / "phone.json"
    records.write_text(dump_records([phone]))
    use_runner(monkeypatch, FakeRunner)
    result = bench_run.run_bench(fake_args(variants="gap", add_records=[str(records)]), progress=False)
    assert [BenchRecord.from_dict(r) for r in result["records_elsewhere"]] == [phone]
    table = bench_report.markdown_table(result)
    assert "Measured elsewhere" in table
    assert f"| model.tflite | sp+sex | tflite-benchmark_model | Pixel 7 (abc123) | 4 | {phone.p50_ms:.2f} | " in table
    assert table.rstrip().endswith("| use_gpu=True |")
    records.write_text('[{"model": "x"}]')
    with pytest.raises(ValueError, match="is not a list of benchmark records"):
        bench_run.run_bench(fake_args(variants="gap", add_records=[str(records)]), progress=False)


def test_onnx_runtime_sessions_do_not_spin_between_runs(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    assert run_export(ExportRequest(ckpt, ["onnx"], tmp_path / "export"), log=lambda m: None)[0]
    from deepsquare.runtime.runners import open_runner

    runner, _ = open_runner(tmp_path / "export", "onnx", threads=2)
    options = runner.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_precisions_a_runtime_lacks_are_skipped_with_a_note() -> None:
    notes = bench_plan.check_precisions(["onnxruntime", "coreml"], ["fp32", "int8"])
    assert notes == [
        "coreml does not offer int8 (onnxruntime: fp32, int8; coreml: fp16, fp32): int8 is timed in onnxruntime only"
    ]
    assert bench_plan.check_precisions(["onnxruntime", "litert", "executorch"], ["fp32", "int8"]) == []
    with pytest.raises(ValueError, match="--precision needs at least one precision"):
        bench_plan.check_precisions(["onnxruntime"], [])


class PathRunner:
    """Records which file ran (the fp32 and int8 files of one model share a folder name)."""

    calls: ClassVar[list[str]] = []

    def __init__(self, path, threads) -> None:
        self.path, self.init_s = str(path), 0.001

    def run(self, x):
        PathRunner.calls.append(self.path)
        return np.zeros((1, 10), np.float32)


def test_each_precision_is_timed_in_the_same_interleaved_group(monkeypatch) -> None:
    PathRunner.calls = []
    for runtime in ("onnxruntime", "litert"):  # the files are exported for real; the fake runners time them
        monkeypatch.setitem(RUNNERS, runtime, lambda path, meta, threads: PathRunner(path, threads))
    monkeypatch.setattr(latency, "PROBE_IN_CHILD", False)
    monkeypatch.setitem(FORMATS, "tflite", dataclasses.replace(FORMATS["tflite"], precisions=("fp32",)))
    notes: list[str] = []
    args = fake_args(variants="gap", to=["onnx", "tflite"], precision=["fp32", "int8"], runs=4)
    result = bench_run.run_bench(args, progress=False, note=notes.append)
    assert notes == [
        "litert does not offer int8 (onnxruntime: fp32, int8; litert: fp32): int8 is timed in onnxruntime only"
    ]
    rows = [(r["runtime"], r["precision"]) for r in result["ratios"]]
    assert rows == [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("litert", "fp32")]
    onnx_files = {Path(p) for p in PathRunner.calls if p.endswith(".onnx")}
    assert len(onnx_files) == 2 and {p.parent.name for p in onnx_files} == {"00", "int8"}
    # One group: the two ONNX files alternate in rotating order (2 blocks of 1 warm-up and 2 timed rounds).
    onnx_calls = [Path(p).parent.name for p in PathRunner.calls if p.endswith(".onnx")]
    assert onnx_calls == ["00", "int8"] + (["00", "int8"] * 2 + ["int8", "00"]) * 2  # the probe, then 2 blocks
    fp32, int8 = result["ratios"][:2]
    assert fp32["vs_fp32"] is None and int8["baseline"] == "gap" and int8["ci95"] == [1.0, 1.0]
    low, high = int8["vs_fp32"][1:]
    assert len(int8["vs_fp32"]) == 3 and low <= int8["vs_fp32"][0] <= high
    extras = [r["extra"] for r in result["records"]]
    assert [e["precision"] for e in extras] == ["fp32", "int8", "fp32"]
    assert [e.get("calibration") for e in extras] == [None, "random", None]
    assert int8["size_kb"] < fp32["size_kb"]  # int8 weights


class RefusingRunner(FakeRunner):
    """The runtime refuses one file, as LiteRT's XNNPACK delegate did an int8 ShuffleNetV2 variant."""

    def __init__(self, path, threads) -> None:
        if Path(path).parent.name == "01":
            raise RuntimeError("failed to create XNNPACK runtime\nNode number 253 failed to prepare.")
        super().__init__(path, threads)


def test_a_file_the_runtime_refuses_is_left_out_with_its_reason(monkeypatch, tmp_path: Path) -> None:
    FakeRunner.calls, FakeRunner.created = [], []
    use_runner(monkeypatch, RefusingRunner)
    notes: list[str] = []
    result = bench_run.run_bench(fake_args(runs=4), progress=False, note=notes.append)
    assert [r["name"] for r in result["ratios"]] == ["gap", "ss"] and "01" not in FakeRunner.calls
    assert result["skipped"] == [
        {
            "arch": "vanilla_cnn",
            "name": "sp",
            "runtime": "onnxruntime",
            "threads": 1,
            "precision": "fp32",
            "reason": "failed to create XNNPACK runtime Node number 253 failed to prepare.",
        }
    ]
    assert notes == [
        "vanilla_cnn sp (fp32) could not run in onnxruntime at 1 thread(s), not timed: failed to "
        "create XNNPACK runtime Node number 253 failed to prepare."
    ]
    from deepsquare.runtime.bench_report import markdown_table

    assert "Not timed: vanilla_cnn sp (fp32) in onnxruntime at 1 thread(s): the runtime refused it" in markdown_table(
        result
    )


def test_tiny_bench_with_int8_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.export.commands",
            "bench",
            "--arch",
            "vanilla_cnn",
            "--variant",
            "gap",
            "--input-size",
            "32",
            "--num-classes",
            "10",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--precision",
            "fp32,int8",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["precisions"] == ["fp32", "int8"]
    keys = {(r["name"], r["runtime"], r["precision"]) for r in data["ratios"]}
    assert keys == {("gap", rt, p) for rt in ("onnxruntime", "litert") for p in ("fp32", "int8")}
    for r in data["ratios"]:
        assert r["baseline"] == "gap"
        if r["precision"] == "int8":
            ratio, low, high = r["vs_fp32"]
            assert 0 < low <= ratio <= high
        else:
            assert r["vs_fp32"] is None
    records = [BenchRecord.from_dict(r) for r in data["records"]]
    assert sorted((r.variant, r.runtime, r.extra["precision"]) for r in records) == sorted(keys)
    assert all(r.extra.get("calibration") == ("random" if r.extra["precision"] == "int8" else None) for r in records)
    table = (tmp_path / "bench.md").read_text()
    assert result.stdout.startswith(table)  # the printed table is bench.md
    assert (
        "| arch | px | model | runtime | precision | threads | p50 ms | ratio (95% CI) | vs | vs fp32 (95% CI) |"
        in table
    )
    int8_row = next(
        line for line in table.splitlines() if line.startswith("| vanilla_cnn | 32 | gap | litert | int8 |")
    )
    ratio, low, high = next(
        r["vs_fp32"] for r in data["ratios"] if (r["name"], r["runtime"], r["precision"]) == ("gap", "litert", "int8")
    )
    assert f"| {ratio:.3f} ({low:.3f}-{high:.3f}) |" in int8_row
    header = (tmp_path / "bench.csv").read_text().splitlines()[0]
    assert header.endswith(",precision,vs_fp32,vs_fp32_low,vs_fp32_high,cached_at")


def test_a_fp32_table_keeps_its_columns() -> None:
    row = {
        "arch": "resnet18",
        "input_size": 224,
        "name": "gap",
        "variant": "gap",
        "runtime": "onnxruntime",
        "threads": 1,
        "runs": 3,
        "p50_ms": 40.0,
        "ratio": 1.0,
        "ci95": [1.0, 1.0],
        "baseline": "gap",
        "params": 1,
        "macs": 2,
        "elementwise": 3,
        "size_kb": 4,
        "source": "x",
        "precision": "fp32",
        "vs_fp32": None,
    }
    result = {"runs": 3, "warmup": 1, "machine": "m", "ratios": [row]}
    table = bench_report.markdown_table(result)
    assert "precision" not in table and "vs fp32" not in table
    assert "| resnet18 | 224 | gap | onnxruntime | 1 | 40 | 1 (baseline) | gap | 1 | 2 | 3 | 4 |" in table


def test_one_models_precisions_keep_one_label_beside_another_source() -> None:
    def model(source: str, precision: str) -> latency.BenchModel:
        return latency.BenchModel("gap", "vanilla_cnn", "gap", 32, {}, source, precision=precision)

    models = [model("/r/a/model.ckpt", "fp32"), model("/r/a/model.ckpt", "int8"), model("/r/b/export", "fp32")]
    bench.unique_names(models)
    assert [m.name for m in models] == ["gap (a/model.ckpt)", "gap (a/model.ckpt)", "gap (b/export)"]
    precisions = [m.precision for m in models]
    assert latency.fp32_index(models, precisions, 1) == 0  # the int8 file pairs with its own fp32 file
