"""deepsquare ablate: the grid, the paired intervals, resuming, and refusals."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from deepsquare.train.ablate import plan
from deepsquare.train.ablate_report import markdown, mean_interval, summarize
from deepsquare.train.stats import paired_difference

TINY = [
    "--arch",
    "vanilla_cnn",
    "--variant",
    "gap,sp",
    "--data",
    "synthetic:64",
    "--seeds",
    "2",
    "--epochs",
    "1",
    "--input-size",
    "16",
    "--batch-size",
    "32",
    "--jobs",
    "2",
]


def ablate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "ablate", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_intervals_by_hand() -> None:
    mean, _, high = mean_interval([1.0, 2.0, 3.0])  # sd 1, n 3, t(2) = 4.303
    assert mean == 2.0 and high - mean == pytest.approx(4.303 / math.sqrt(3))
    table = [("gap", 0, 50.0), ("gap", 1, 60.0), ("gap", 2, 55.0), ("sp", 0, 52.0), ("sp", 1, 62.0), ("sp", 2, 57.5)]
    results = [{"name": f"a/{v}", "seed": s, "top1": top1} for v, s, top1 in table]
    rows = {r["name"]: r for r in summarize(results, "gap")}
    sp = rows["a/sp"]
    assert sp["diff"] == pytest.approx(2.1666, abs=1e-3) and sp["pairs"] == 3  # seed by seed: 2, 2, 2.5
    assert sp["measured"]  # the pairs agree closely, although the means' own intervals overlap widely
    assert rows["a/sp"]["ci95"][0] < rows["a/gap"]["ci95"][1]


def test_a_data_set_without_a_test_split_is_reported_on_val_and_says_so() -> None:
    args = SimpleNamespace(data="imagefolder:x", epochs=1, seeds=2, dropout=0.0, baseline="gap")
    results = [
        {"name": f"a/{v}", "seed": s, "top1": 50.0 + s, "val_top1": 50.0 + s, "split": "val"}
        for v in ("gap", "sp")
        for s in (0, 1)
    ]
    text = markdown(summarize(results, "gap"), args, 1.0, results)
    assert "val split: the data has no held-out test split" in text and "| val top-1 % (95% CI) |" in text
    tested = [{**r, "split": "test"} for r in results]
    assert "held-out test split, which nothing selects on" in markdown(summarize(tested, "gap"), args, 1.0, tested)


def test_paired_per_image_difference_by_hand() -> None:
    # 10 images: the variant alone right on 2 -> differences (points) 100, 100 and eight 0: mean 20,
    # sd sqrt((2 * 80^2 + 8 * 20^2) / 9) = 42.16, half-width 1.96 * 42.16 / sqrt(10) = 26.13: contains 0, ns
    variant = [1, 1, 1, 0, 1, 0, 1, 1, 1, 1]
    gap = [0, 1, 1, 0, 0, 0, 1, 1, 1, 1]
    d = paired_difference(variant, gap)
    assert d["diff"] == pytest.approx(20.0) and d["images"] == 10 and not d["measured"]
    assert d["ci95"] == pytest.approx([20 - 26.133, 20 + 26.133], abs=1e-2)
    # 100 images: variant alone right on 30, gap alone right on 5: mean +25,
    # sd sqrt((30 * 75^2 + 5 * 125^2 + 65 * 25^2) / 99) = 53.89, half-width 10.56: measured
    variant = [1] * 30 + [0] * 5 + [1] * 40 + [0] * 25
    gap = [0] * 30 + [1] * 5 + [1] * 40 + [0] * 25
    d = paired_difference(variant, gap)
    assert d["diff"] == pytest.approx(25.0) and d["measured"]
    assert d["ci95"] == pytest.approx([25 - 10.562, 25 + 10.562], abs=1e-2)
    assert not paired_difference(gap, gap)["measured"]  # identical predictions: 0 (0 to 0), ns
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([1, 0], [1])


def test_a_tiny_sweep_writes_its_tables_and_resumes_without_redoing(tmp_path: Path) -> None:
    result = ablate(*TINY, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {"ablation.csv", "ablation.md", "ablation.png"} <= {p.name for p in tmp_path.iterdir()}
    rows = (tmp_path / "ablation.csv").read_text().splitlines()
    assert rows[0].startswith("name,arch,variant") and len(rows) == 1 + 2 * 2
    table = (tmp_path / "ablation.md").read_text()
    assert "| vanilla_cnn/sp | 2 |" in table and "held-out test split" in table and "test top-1 % (95% CI)" in table
    # the table reports each run's test top-1 (its last metrics row), with val beside it
    for row in csv.DictReader((tmp_path / "ablation.csv").open()):
        final = list(
            csv.DictReader(
                (tmp_path / "runs" / f"{row['name'].replace('/', '_')}" / f"seed{row['seed']}" / "metrics.csv").open()
            )
        )[-1]
        assert row["split"] == "test" and float(row["top1"]) == float(final["test_top1"])
        assert float(row["val_top1"]) == float(final["val_top1"])
    done = sorted(tmp_path.glob("runs/*/seed*/result.json"))
    assert len(done) == 4
    stamps = [p.stat().st_mtime_ns for p in done]
    (done[0]).unlink()  # as if the sweep had been killed before this run finished
    again = ablate(*TINY, "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in done[1:]] == stamps[1:] and done[0].exists()  # only the missing one ran
    assert json.loads(done[0].read_text())["seed"] in (0, 1)


def test_a_varied_flag_is_an_axis_paired_to_the_baseline_and_reaches_the_trainer(tmp_path: Path) -> None:
    args = [
        "--arch",
        "vanilla_cnn",
        "--variant",
        "gap,sp",
        "--data",
        "synthetic:64",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--input-size",
        "16",
        "--batch-size",
        "32",
        "--vary",
        "dropout=0,0.5",
    ]
    result = ablate(*args, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    names = {row["name"] for row in csv.DictReader((tmp_path / "ablation.csv").open())}
    assert names == {f"vanilla_cnn/{v}{s}" for v in ("gap", "sp") for s in ("", " [dropout=0.5]")}
    from deepsquare.train.checkpoint import Checkpoint

    for folder in sorted((tmp_path / "runs").iterdir()):
        dropout = Checkpoint.load(folder / "seed0" / "model.ckpt").spec.dropout
        assert dropout == (0.5 if folder.name.endswith("dropout0.5") else 0.0), folder.name
    table = (tmp_path / "ablation.md").read_text()
    assert "dropout 0 / 0.5" in table and "first value of each axis" in table
    assert "| vanilla_cnn/gap [dropout=0.5] | 2 |" in table and "| vanilla_cnn/gap | 2 |" in table
    # the same --out with another recipe is refused before anything trains; a grown grid is not
    other = ablate(*args[:-2], "--epochs", "2", "--out", str(tmp_path))
    assert other.returncode == 1 and "holds a sweep with another recipe" in other.stderr
    assert "epochs 2 (the sweep has 1)" in other.stderr and "baseline_settings" in other.stderr
    plan_args = SimpleNamespace(
        arch="vanilla_cnn",
        variants="gap,ss",
        dsop="none",
        dsop_iterations=[5],
        seeds=2,
        epochs=1,
        vary={"ss-init": ["1", "0.5"], "dropout": ["0", "0.2"]},
    )
    names = sorted({run.name for run in plan(plan_args)})  # ss-init does not act on gap: gap trains once per dropout
    assert names == [
        "vanilla_cnn/gap",
        "vanilla_cnn/gap [dropout=0.2]",
        "vanilla_cnn/ss",
        "vanilla_cnn/ss [dropout=0.2]",
        "vanilla_cnn/ss [ss-init=0.5, dropout=0.2]",
        "vanilla_cnn/ss [ss-init=0.5]",
    ]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["trainer_defaults"]["ss-lr-scale"] == 0.1  # a later change of a trainer default is a new recipe
    grown = ablate(*[a if a != "gap,sp" else "gap,sp,ss" for a in args], "--out", str(tmp_path))
    assert grown.returncode == 0, grown.stderr
    assert len((tmp_path / "ablation.csv").read_text().splitlines()) == 1 + 3 * 2 * 2


REFUSALS = [
    (["--seeds", "1"], "--seeds must be >= 2"),
    (["--variant", "gap,foo"], "unknown variant name 'foo'"),
    (["--arch", "resnet7"], "unknown arch 'resnet7'"),
    (["--vary", "dropout=0"], "give two or more different values"),
    (["--vary", "arch=1,2"], "'arch' cannot vary"),
    (["--vary", "lr=0.1,x"], "'x' is not a number"),
    (["--vary", "dropout=0,1.5"], "--dropout must be in [0, 1)"),
    (["--vary", "dropout=0,0.2", "--dropout", "0.1"], "--dropout and --vary dropout both given"),
    (["--variant", "sp", "--baseline", "gap"], "is not among --variant"),
]


@pytest.mark.parametrize(("args", "message"), REFUSALS)
def test_bad_requests_are_refused_before_training(tmp_path: Path, args: list[str], message: str) -> None:
    result = ablate("--out", str(tmp_path / "out"), *args)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "runs").exists()
