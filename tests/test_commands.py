"""The console commands this issue ships: the main job and the iSQRT benchmark."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepsquare.train.checkpoint import Checkpoint


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600)


def test_bench_isqrt_prints_a_table_and_the_ratio() -> None:
    result = run(
        "deepsquare.export.commands",
        "bench",
        "isqrt",
        "--batch-size",
        "2",
        "--dsop-dim",
        "8",
        "--runs",
        "2",
        "--warmup",
        "0",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["method", "median", "ms", "p90", "ms", "min", "ms"]
    assert lines[2].startswith("isqrt (T=5)") and lines[3].startswith("eigh")
    assert lines[-1].startswith("eigh / iSQRT median ratio: ") and lines[-1].endswith("x")


def test_bench_isqrt_refuses_bad_sizes() -> None:
    result = run("deepsquare.export.commands", "bench", "isqrt", "--dsop-dim", "0")
    assert result.returncode == 2
    assert "must be >= 1" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_trains_exports_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run(
        "deepsquare.export.commands",
        "demo",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--data",
        "synthetic:64",
        "--runs",
        "2",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"report: {(out / 'report.md').resolve()}"
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True and [r["name"] for r in report["runs"]] == ["gap", "se", "sp+ss+sex+dsop"]
    for r in report["runs"]:
        assert r["export_ok"] and set(r["formats"]) == {"onnx", "coreml", "tflite", "executorch"}
        assert (out / r["name"] / "export" / "model.onnx").is_file()
    dsop = report["runs"][2]
    assert dsop["dsop"] == ["stage2", "stage3", "stage4"] and dsop["params_training"] > dsop["params_deploy"]
    # equal regularisation, and each variant paired with gap image by image over the 500 held-out test images
    assert report["dropout"] == 0.0
    for r in report["runs"]:
        ckpt = Checkpoint.load(r["checkpoint"])
        assert ckpt.spec.dropout == 0.0 and r["held_out_split"] == "test" and "held_out_correct" not in r
        assert r["held_out_top1"] == pytest.approx(ckpt.metrics[-1]["test_top1"], abs=1e-3)  # the trainer's figure
    for r in report["runs"][1:]:
        d = r["vs_gap"]
        assert d["images"] == 500 and d["ci95"][0] <= d["diff"] <= d["ci95"][1]
        assert d["diff"] == pytest.approx(r["held_out_top1"] - report["runs"][0]["held_out_top1"], abs=1e-6)
        assert d["measured"] == (not d["ci95"][0] <= 0 <= d["ci95"][1])
    text = (out / "report.md").read_text()
    assert "| val top-1 | test top-1 | vs gap on test, points (95% CI) |" in text
    assert "test-sampling noise only, not seed-to-seed variation" in text and "| gap | " in text
    assert f"| se | {report['runs'][1]['val_top1']:.1f}% | {report['runs'][1]['held_out_top1']:.1f}% | " in text
    assert "| resnet50 | 25,557,032 |" in text and "| sp+ss+sex+dsop |" in text
    assert "| shufflenetv2_x0_5 | 224 | sp+ss+sex | litert | 1 |" in text
    # the trained models are timed as exported (32px), and their latency sits beside their accuracy
    assert "| shufflenetv2_x0_5 | 32 | sp+ss+sex+dsop | onnxruntime | 1 |" in text
    assert "not timed" not in text
    trained_rows = [r for r in report["latency"]["ratios"] if r["input_size"] == 32]
    assert {r["source"] for r in trained_rows} == {str(out / n / "export") for n in ("gap", "se", "sp+ss+sex+dsop")}
    assert sorted(p.name for p in (out / "bench").iterdir()) == ["bench.csv", "bench.json", "bench.md", "bench.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; the check needs an unprivileged user")
def test_demo_refuses_an_unwritable_out(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run("deepsquare.export.commands", "demo", "--out", str(locked / "demo"))
    assert result.returncode == 2
    assert "cannot write to" in result.stderr and "Traceback" not in result.stderr


def test_demo_refuses_an_out_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("deepsquare.export.commands", "demo", "--out", str(blocker / "demo"))
    assert result.returncode == 2
    assert "cannot write to" in result.stderr and "Traceback" not in result.stderr


def test_demo_pairs_each_variant_with_gap_over_the_test_images(tmp_path: Path) -> None:
    from deepsquare.export.demo import held_out_correct, paired_to_baseline, vs_gap_cell
    from deepsquare.train.trainer import TrainConfig, train

    runs = []
    for variant in ("gap", "sp"):
        ckpt = train(
            TrainConfig(
                arch="vanilla_cnn",
                variant=variant,
                data="synthetic:64",
                epochs=1,
                batch_size=32,
                input_size=16,
                dropout=0.0,
                out=str(tmp_path / variant),
            ),
            quiet=True,
        )
        split, correct = held_out_correct(ckpt, seed=0)
        # per-image predictions of the checkpoint reproduce the trainer's own test figure
        assert split == "test" and len(correct) == 500 and set(correct) <= {0, 1}
        assert 100 * sum(correct) / 500 == pytest.approx(Checkpoint.load(ckpt).metrics[-1]["test_top1"], abs=1e-3)
        runs.append({"name": variant, "held_out_correct": correct})
    paired_to_baseline(runs)
    assert "vs_gap" not in runs[0] and all("held_out_correct" not in r for r in runs)
    assert vs_gap_cell(runs[0]) == "baseline"
    d = runs[1]["vs_gap"]
    assert d["images"] == 500 and d["ci95"][0] <= d["diff"] <= d["ci95"][1]
    assert vs_gap_cell(runs[1]).endswith(" ns") == (not d["measured"])
    ns = {"vs_gap": {"diff": 1.0, "ci95": [-2.0, 4.0], "images": 500, "measured": False}}
    assert vs_gap_cell(ns) == "+1.0 (-2.0 to +4.0) ns"
    ns["vs_gap"].update(ci95=[0.5, 1.5], measured=True)
    assert vs_gap_cell(ns) == "+1.0 (+0.5 to +1.5)"


def test_the_main_jobs_terminal_gives_each_ratio_with_its_interval() -> None:
    from deepsquare.export.demo import ratio_text

    row = {"name": "se", "baseline": "gap", "ratio": 1.124, "ci95": [1.101, 1.148]}
    assert ratio_text(row) == "x1.124 (1.101-1.148)"
    assert ratio_text({**row, "ratio": 2.285, "ci95": [0.455, 1.470]}) == "x2.285 (0.455-1.470) ns"
    assert ratio_text({**row, "name": "gap"}) == "x1 (the baseline)"
