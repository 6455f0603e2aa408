"""deepsquare bench per file: the machine in every record, the busy-machine line, the result cache, the order-
statistic intervals, the Pareto front, and a bundle benched twice (the second run from the cache)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from export_helpers import write_checkpoint

from deepsquare.export.pipeline import ExportRequest, run_export
from deepsquare.runtime import machine
from deepsquare.runtime.bench_cache import BenchCache, file_sha256
from deepsquare.runtime.bench_table import busy_summary, pareto_front
from deepsquare.runtime.records import BenchRecord, quantile_interval

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx fma avx2 avx512f avx512bw avx512_vnni avx512_bf16
"""
PIXEL = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm aes asimddp sha512 asimdfhm i8mm bf16
CPU implementer\t: 0x41
"""
LAPTOP = "model name\t: Intel(R) Core(TM) i7-8650U\nflags\t\t: sse2 avx fma avx2\n"


def test_cpuinfo_names_the_isa_extensions_the_kernels_use() -> None:
    assert machine.parse_cpuinfo(EPYC) == ("AMD EPYC 9B14", ["AVX2", "FMA", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16"])
    assert machine.parse_cpuinfo(LAPTOP)[1] == ["AVX2", "FMA"]  # no VNNI: int8 figures differ from the EPYC's
    assert machine.parse_cpuinfo(PIXEL) == ("", ["NEON", "dotprod", "i8mm"])


def test_this_machine_is_named_with_model_cores_and_isa() -> None:
    info = machine.cpu()
    assert info["cores"] >= 1 and info["model"]
    line = machine.describe()
    assert info["model"] in line and f"{info['cores']} cores" in line
    assert all(name in line for name in info["isa"])
    assert machine.runtime_version("onnxruntime").startswith("onnxruntime ")


def snapshot(load: float, steal: float, total: float) -> dict:
    return {"load1": load, "steal": steal, "total": total}


def test_busy_machine_reasons() -> None:
    idle = snapshot(0.2, 0, 1000), snapshot(0.9, 10, 2000)
    assert machine.busy_reasons(*idle, widest=1.05, cores=2) == []
    assert machine.busy_warning([]) is None
    assert machine.busy_reasons(snapshot(3.5, 0, 1000), idle[1], None, cores=2) == ["load average 3.5 on 2 cores"]
    assert machine.busy_reasons(idle[0], snapshot(0.5, 110, 2000), None, cores=2) == ["CPU steal 11%"]
    (wide,) = machine.busy_reasons(*idle, widest=1.5, cores=2)
    assert "x1.50" in wide
    line = machine.busy_warning([wide])
    assert "--time-budget" in line and "idle machine" in line and "\n" not in line


def ratio_row(name: str, low: float, high: float, cached_at: str | None = None) -> dict:
    return {"name": name, "baseline": "gap", "ratio": (low + high) / 2, "ci95": [low, high], "cached_at": cached_at}


def test_busy_summary_reads_fresh_intervals_only() -> None:
    idle = {"start": snapshot(0.1, 0, 1000), "end": snapshot(0.1, 0, 2000)}
    result = {"ratios": [ratio_row("gap", 1, 1), ratio_row("se", 0.5, 1.5)], "load": idle, "cpu": {"cores": 2}}
    assert busy_summary(result)["warning"] and busy_summary(result)["widest_interval"] == pytest.approx(3.0)
    result["ratios"] = [ratio_row("gap", 1, 1, "then"), ratio_row("se", 0.5, 1.5, "then")]
    assert busy_summary(result)["warning"] is None  # nothing was timed now


def test_quantile_interval_brackets_the_percentile() -> None:
    values = [float(v) for v in range(100)]
    low, high = quantile_interval(values, 50)
    assert low < 50 < high and high - low < 30
    low90, high90 = quantile_interval(values, 90)
    assert low90 < 90 < high90 <= 99
    assert quantile_interval([3.0], 50) == [3.0, 3.0]


def test_pareto_front_keeps_the_points_nothing_beats() -> None:
    # (latency, accuracy): b is slower and less accurate than a; d is the slow but most accurate one.
    points = [(1.0, 90.0), (2.0, 85.0), (0.5, 80.0), (3.0, 95.0)]
    assert pareto_front(points) == [2, 0, 3]


def test_cache_keys_change_with_every_part(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"one")
    cache = BenchCache(tmp_path / "bench-cache.json")
    parts = {"sha": cache.sha256(model), "runtime": "onnxruntime 1.0", "threads": 1, "machine": {"cpu": "x"}}
    key = cache.key("cold", **parts)
    assert key == cache.key("cold", **dict(reversed(parts.items())))
    for change in ({"threads": 2}, {"runtime": "onnxruntime 1.1"}, {"machine": {"cpu": "y"}}):
        assert cache.key("cold", **{**parts, **change}) != key
    assert cache.get(key) is None
    when = cache.put(key, {"load_ms": 1.0})
    cache.save()
    again = BenchCache(tmp_path / "bench-cache.json")
    assert again.get(key) == {"measured_at": when, "value": {"load_ms": 1.0}} and again.hits == 1
    assert BenchCache(tmp_path / "bench-cache.json", enabled=False).get(key) is None  # --no-cache
    model.write_bytes(b"two")
    assert file_sha256(model) != parts["sha"]  # a re-exported file is measured anew


def test_a_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "bench-cache.json").write_text("{not json")
    assert BenchCache(tmp_path / "bench-cache.json").entries == {}


def bench(bundle: Path, out: Path, *flags: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepsquare.export.commands",
            "bench",
            str(bundle),
            "--to",
            "onnx",
            "--data",
            "synthetic",
            "--images",
            "40",
            "--runs",
            "4",
            "--warmup",
            "1",
            "--cold-starts",
            "2",
            "--out",
            str(out),
            "--quiet",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, time.perf_counter() - start


@pytest.mark.slow
def test_a_bundle_benched_twice_comes_from_the_cache(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path, "vanilla_cnn", "gap", size=16)
    bundle = tmp_path / "bundle"
    ok, report = run_export(ExportRequest(checkpoint=checkpoint, formats=["onnx"], out=bundle, samples=4, jobs=1))
    assert ok, report
    out = tmp_path / "bench"
    first, first_s = bench(bundle, out)
    assert first.returncode == 0, first.stderr
    data = json.loads((out / "bench.json").read_text())
    pytorch, onnx = data["files"]
    assert (pytorch["format"], onnx["format"]) == ("pytorch", "onnx")
    assert onnx["size_kb"] > 0 and onnx["images"] == 40 and 0 <= onnx["top1"] <= 100
    assert set(onnx["vs_pytorch"]) >= {"diff", "ci95", "measured"} and 0 <= onnx["agreement"] <= 100
    for key in ("load_ms", "first_ms", "p50_ms", "p90_ms", "peak_rss_mb"):
        assert onnx[key] > 0, key
    assert onnx["p50_ci95"][0] <= onnx["p50_ms"] <= onnx["p50_ci95"][1]
    assert 10 < onnx["peak_rss_mb"] < 4000  # the child's own memory, not the benching process's
    (record,) = [BenchRecord.from_dict(r) for r in data["records"]]
    assert record.extra["cpu"] == machine.cpu() and record.extra["versions"]["runtime"].startswith("onnxruntime")
    assert machine.cpu()["model"] in record.machine and record.extra["peak_rss_mb"] == onnx["peak_rss_mb"]
    assert machine.cpu()["model"] in first.stdout.splitlines()[0]  # the table's header names the CPU
    assert "| gap | onnx | fp32 | float32 |" in first.stdout and "came from the cache" not in first.stdout
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    second, second_s = bench(bundle, out)
    assert second.returncode == 0, second.stderr
    assert "measurements came from the cache" in second.stdout
    assert "| gap | onnx | fp32 | float32 |" in second.stdout and "| cache (all), " in second.stdout
    again = json.loads((out / "bench.json").read_text())
    assert again["files"][1]["p50_ms"] == onnx["p50_ms"] and again["cache"]["measured"] == 0
    assert second_s < 0.8 * first_s  # loose: one run each; the second measures nothing

    third, _ = bench(bundle, out, "--no-cache")
    assert third.returncode == 0 and "came from the cache" not in third.stdout
