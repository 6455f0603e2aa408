"""The benchmark record schema and the benchmark_model parser on real captured outputs."""

import json
from pathlib import Path

import pytest

from deepsquare.runtime.benchmark_model import BenchmarkOutputError, parse_benchmark_output
from deepsquare.runtime.records import BenchRecord, percentile, record_from_times

# Real outputs of several benchmark_model versions (tests/fixtures/benchmark_model/README.md says where from).
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "benchmark_model"

EXPECTED = {  # file: (runs, mean ms, min ms, init ms, warm-up runs, median ms, memory key, threads)
    "android_arm64_cpu_4threads.txt": (50, 249.684, 247.067, 16.242, 0, None, "peak_overall_mb", None),
    "android_logcat_percentiles.txt": (25, 145.528, 140.071, 92.318, 0, 141.253, "delta_overall_mb", None),
    "android_nnapi_gpu.txt": (50, 156.669, 149.738, 404.292, 0, None, None, None),
    "embedded_linux_info_prefix_percentiles.txt": (50, 1240.27, 1238.588, 5.579, 1, 1239.807, "delta_overall_mb", None),
    "linux_op_profiling.txt": (50, 2950.34, 2727.568, 17.187, 1, None, "delta_overall_mb", 4),
    "linux_op_profiling_full.txt": (50, 2950.34, 2727.568, 17.187, 1, None, "delta_overall_mb", 4),
    "xnnpack_op_profiling_excerpt.txt": (64, 15.5176, 14.661, 32.163, 32, None, "delta_overall_mb", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_benchmark_model_outputs_parse(name: str) -> None:
    runs, mean, low, init, warmup, median, memory, threads = EXPECTED[name]
    result = parse_benchmark_output((FIXTURES / name).read_text())
    record = result.record(model="m.tflite", variant="gap", machine="device")
    assert record.runs == runs and record.warmup == warmup and record.threads == threads
    assert record.mean_ms == pytest.approx(mean) and record.min_ms == pytest.approx(low)
    assert record.init_ms == pytest.approx(init)
    assert record.p50_ms == (pytest.approx(median) if median else None)
    if memory:
        assert record.extra[memory] > 0
    assert BenchRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_all_fixture_files_are_covered() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


def test_not_benchmark_output_is_refused() -> None:
    with pytest.raises(BenchmarkOutputError, match="is this benchmark_model output"):
        parse_benchmark_output("adb: no devices/emulators found\n")


def test_record_from_times_statistics() -> None:
    record = record_from_times(
        [4.0, 1.0, 3.0, 2.0, 5.0],
        model="resnet18",
        variant="sp",
        runtime="onnxruntime",
        threads=1,
        warmup=3,
        init_ms=12.5,
        machine="here",
    )
    assert (record.runs, record.mean_ms, record.min_ms, record.max_ms, record.p50_ms) == (5, 3.0, 1.0, 5.0, 3.0)
    assert record.p90_ms == pytest.approx(4.6) and record.std_ms == pytest.approx(1.5811, rel=1e-4)
    assert percentile([10.0], 90) == 10.0
    with pytest.raises(ValueError, match="lacks init_ms"):
        BenchRecord.from_dict({k: v for k, v in record.to_dict().items() if k != "init_ms"})


def profile(*args: str, env: dict | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "profile", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_profile_without_adb_says_so(tmp_path: Path) -> None:
    import os
    import sys

    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # python only, no adb
    result = profile("android", str(tmp_path / "m.tflite"), "--benchmark-binary", str(tmp_path / "bm"), env=env)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "deepsquare profile: error: adb is not installed (Debian: apt-get install adb; or Android platform-tools)"
    )


@pytest.mark.skipif(__import__("shutil").which("adb") is None, reason="adb is not installed on this machine")
def test_profile_with_adb_and_no_device_says_so(tmp_path: Path) -> None:
    result = profile("android", str(tmp_path / "m.tflite"), "--benchmark-binary", str(tmp_path / "bm"))
    assert result.returncode == 1
    assert "no Android device attached" in result.stderr and "Traceback" not in result.stderr


def test_profile_parse_writes_a_joinable_record(tmp_path: Path) -> None:
    out = tmp_path / "records.json"
    result = profile(
        "parse", str(FIXTURES / "android_logcat_percentiles.txt"), "--variant", "sp+sex", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    (record,) = [BenchRecord.from_dict(r) for r in json.loads(out.read_text())]
    assert record.variant == "sp+sex" and record.runtime == "tflite-benchmark_model" and record.runs == 25


def test_profile_ios_off_macos_says_so(tmp_path: Path) -> None:
    import platform

    result = profile("ios", str(tmp_path / "model.mlpackage"))
    if platform.system() != "Darwin":
        assert result.returncode == 1 and "Core ML timing needs macOS" in result.stderr


def test_profile_out_accumulates_and_refuses_a_foreign_file(tmp_path: Path) -> None:
    out = tmp_path / "records.json"
    for variant in ("gap", "se"):
        result = profile(
            "parse", str(FIXTURES / "android_logcat_percentiles.txt"), "--variant", variant, "--out", str(tmp_path)
        )
        assert result.returncode == 0, result.stderr
    assert [BenchRecord.from_dict(r).variant for r in json.loads(out.read_text())] == ["gap", "se"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "records.json").write_text('{"not": "records"}')
    result = profile("parse", str(FIXTURES / "android_logcat_percentiles.txt"), "--out", str(foreign))
    assert result.returncode == 1 and "is not a JSON list of benchmark records" in result.stderr
    assert (foreign / "records.json").read_text() == '{"not": "records"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "records.json"]  # no temporary files
    assert sorted(p.name for p in foreign.iterdir()) == ["records.json"]


def test_profile_ios_names_a_bad_compute_unit(tmp_path: Path) -> None:
    result = profile("ios", str(tmp_path / "model.mlpackage"), "--compute-units", "CPU_ONLY,NPU")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "deepsquare profile: error: unknown compute unit(s) ['NPU']; valid: CPU_ONLY, CPU_AND_GPU, ALL"
    )


def test_coreml_timing_loop_interleaves_compute_units(tmp_path: Path, monkeypatch) -> None:
    """The macOS loop up to Core ML itself (a stand-in MLModel records what it is asked): one record per compute
    unit, rounds interleaved, warm-up untimed. Real Core ML prediction cannot run here."""
    from types import SimpleNamespace

    import coremltools as ct

    from deepsquare.runtime import profile as profile_module

    calls: list[str] = []

    class StandInMLModel:
        def __init__(self, path: str, compute_units) -> None:
            self.unit = compute_units.name

        def get_spec(self):
            image = SimpleNamespace(type=SimpleNamespace(imageType=SimpleNamespace(width=32, height=24)))
            return SimpleNamespace(description=SimpleNamespace(input=[image]))

        def predict(self, inputs: dict) -> dict:
            assert inputs["image"].size == (32, 24)
            calls.append(self.unit)
            return {}

    monkeypatch.setattr(profile_module.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(ct.models, "MLModel", StandInMLModel)
    package = tmp_path / "model.mlpackage"
    package.mkdir()
    (tmp_path / "model.json").write_text(json.dumps({"variant": "sp+ss"}))
    records = profile_module.profile_coreml(package, ["CPU_ONLY", "ALL"], runs=3, warmup=1)
    # The protocol of deepsquare bench: 3 rounds in 2 blocks (2 + 1), models re-created per block, one warm-up
    # round after each creation, the order rotating every round.
    c, a = "CPU_ONLY", "ALL"
    assert calls == [c, a, c, a, a, c, c, a, c, a]
    assert [(r.extra["compute_units"], r.runs, r.warmup, r.runtime, r.variant) for r in records] == [
        ("CPU_ONLY", 3, 1, "coreml", "sp+ss"),
        ("ALL", 3, 1, "coreml", "sp+ss"),
    ]
    assert all(BenchRecord.from_dict(r.to_dict()) == r for r in records)


def test_coreml_runner_returns_the_classifiers_probabilities_in_class_order(tmp_path: Path, monkeypatch) -> None:
    """What coremltools' MLModel.predict returns for the exported classifier: the top label under 'classLabel' and a
    {label: probability} dict under the probabilities output; never 'logits'. Real Core ML cannot run here."""
    from types import SimpleNamespace

    import coremltools as ct
    import numpy as np

    from deepsquare.runtime import runners
    from deepsquare.runtime.bundle import BundleMeta

    classes = ["cat", "dog", "emu"]

    class ClassifierStandIn:
        def __init__(self, path: str, compute_units) -> None:
            self.seen = []

        def get_spec(self):
            return SimpleNamespace(description=SimpleNamespace(predictedProbabilitiesName="classLabel_probs"))

        def predict(self, inputs: dict) -> dict:
            self.seen.append(inputs["image"].size)
            return {"classLabel": "emu", "classLabel_probs": {"emu": 0.7, "cat": 0.1, "dog": 0.2}}

    monkeypatch.setattr(runners.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(ct.models, "MLModel", ClassifierStandIn)
    meta = BundleMeta("vanilla_cnn", "gap", classes, 8, [0.5] * 3, [0.25] * 3)
    runner = runners.CoreMLRunner(tmp_path / "model.mlpackage", meta)
    probs = runner.run(np.zeros((2, 3, 8, 8), np.float32))
    assert probs.dtype == np.float32 and np.allclose(probs, [[0.1, 0.2, 0.7]] * 2)
    assert runner.model.seen == [(8, 8), (8, 8)]
    assert runners.top_k(probs[0], classes, 2, probabilities=True) == [
        ("emu", pytest.approx(0.7)),
        ("dog", pytest.approx(0.2)),
    ]
