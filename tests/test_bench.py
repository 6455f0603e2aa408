"""deepsquare-bench: MAC counting, interleaving, ratios, and a tiny end-to-end run (no timing asserted)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepsquare.export import bench
from deepsquare.runtime.records import BenchRecord
from deepsquare.train import build_model


def test_macs_of_the_vanilla_cnn_by_hand() -> None:
    # Table 1 at 32x32: three 3x3 stride-2 convs (16x16x32, 8x8x64, 4x4x128 outputs), FC 128 -> 10.
    by_hand = 16 * 16 * 32 * (3 * 9) + 8 * 8 * 64 * (32 * 9) + 4 * 4 * 128 * (64 * 9) + 128 * 10
    assert by_hand == 2_581_760
    assert bench.count_macs(build_model("vanilla_cnn", num_classes=10), 32) == by_hand


def test_macs_of_resnet18_match_the_known_figure() -> None:
    # ResNet-18 at 224x224 is the well-known 1.82 GMACs (1,814,073,344 counting convs and the FC).
    assert bench.count_macs(build_model("resnet18"), 224) == 1_814_073_344


def test_ratio_interval_is_the_geometric_mean_of_paired_rounds() -> None:
    ratio, low, high = bench.ratio_interval([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert (ratio, low, high) == (2.0, 2.0, 2.0)
    ratio, low, high = bench.ratio_interval([1.1, 0.9, 1.2, 1.0], [1.0, 1.0, 1.0, 1.0])
    assert low < ratio < high and ratio == pytest.approx(math.exp(np.mean(np.log([1.1, 0.9, 1.2, 1.0]))))


def test_variants_are_timed_interleaved(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []

    class FakeRunner:
        def __init__(self, path, threads) -> None:
            self.name, self.init_s = Path(path).parent.name, 0.001

        def run(self, x):
            calls.append(self.name)
            return np.zeros((1, 10), np.float32)

    monkeypatch.setitem(bench.RUNNERS, "onnxruntime", ("onnx", FakeRunner))
    args = type("Args", (), {"arch": "vanilla_cnn", "variants": "sp,ss", "runtimes": "onnxruntime", "threads": "1",
                             "input_size": 16, "num_classes": 10, "runs": 3, "warmup": 1})()  # fmt: skip
    result = bench.run_bench(args, progress=False)
    names = ["vanilla_cnn-gap", "vanilla_cnn-sp", "vanilla_cnn-ss"]
    assert calls == names * 4  # A B C A B C ..., gap added first
    assert [r["variant"] for r in result["ratios"]] == ["gap", "sp", "ss"]
    records = [BenchRecord.from_dict(r) for r in result["records"]]
    assert all(r.runs == 3 and r.warmup == 1 and r.runtime == "onnxruntime" for r in records)


def test_tiny_bench_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deepsquare.export.bench", "--arch", "vanilla_cnn", "--variants", "gap,sp+ss",
         "--input-size", "16", "--num-classes", "10", "--runs", "3", "--warmup", "1", "--out", str(tmp_path),
         "--quiet"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.csv", "bench.json", "bench.md", "bench.png"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {(r["variant"], r["runtime"]) for r in data["records"]} == {
        (v, rt) for v in ("gap", "sp+ss") for rt in ("onnxruntime", "litert")}  # fmt: skip
    assert "| vanilla_cnn | sp+ss | litert | 1 |" in result.stdout
    assert (tmp_path / "bench.csv").read_text().splitlines()[0].startswith("arch,variant,runtime,threads,p50_ms")


def test_unknown_runtime_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "deepsquare.export.bench", "--runtimes", "tensorrt", "--quiet",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and "unknown runtime(s) ['tensorrt']" in result.stderr
