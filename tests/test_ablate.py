"""deepsquare-ablate: the grid, the paired intervals, resuming, and refusals."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from deepsquare.train.ablate import mean_interval, summarize

TINY = ["--arch", "vanilla_cnn", "--variants", "gap,sp", "--data", "synthetic:64", "--seeds", "2", "--epochs", "1",
        "--input-size", "16", "--batch-size", "32", "--jobs", "2"]  # fmt: skip


def ablate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepsquare.train.ablate", *args], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


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


def test_a_tiny_sweep_writes_its_tables_and_resumes_without_redoing(tmp_path: Path) -> None:
    result = ablate(*TINY, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {"ablation.csv", "ablation.md", "ablation.png"} <= {p.name for p in tmp_path.iterdir()}
    rows = (tmp_path / "ablation.csv").read_text().splitlines()
    assert rows[0].startswith("name,arch,variant") and len(rows) == 1 + 2 * 2
    assert "| vanilla_cnn/sp | 2 |" in (tmp_path / "ablation.md").read_text()
    done = sorted(tmp_path.glob("runs/*/seed*/result.json"))
    assert len(done) == 4
    stamps = [p.stat().st_mtime_ns for p in done]
    (done[0]).unlink()  # as if the sweep had been killed before this run finished
    again = ablate(*TINY, "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in done[1:]] == stamps[1:] and done[0].exists()  # only the missing one ran
    assert json.loads(done[0].read_text())["seed"] in (0, 1)


REFUSALS = [(["--seeds", "1"], "--seeds must be >= 2"), (["--variants", "gap,foo"], "unknown variant name 'foo'"),
            (["--arch", "resnet7"], "unknown arch 'resnet7'"),
            (["--variants", "sp", "--baseline", "gap"], "is not among --variants")]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), REFUSALS)
def test_bad_requests_are_refused_before_training(tmp_path: Path, args: list[str], message: str) -> None:
    result = ablate("--out", str(tmp_path / "out"), *args)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "runs").exists()
