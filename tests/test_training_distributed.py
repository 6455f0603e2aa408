"""torchrun with 2 CPU processes (gloo): sharded data, synced weights, only rank 0 writes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.optim import lr_at


def test_two_process_gloo_run_writes_one_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "deepsquare.train",
        "--quiet",
        "--arch",
        "vanilla_cnn",
        "--variant",
        "sp+ss",
        "--dsop",
        "layer3",
        "--dsop-dim",
        "8",
        "--data",
        "synthetic:128",
        "--input-size",
        "16",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("epoch 2/2:") == 1  # rank 0 alone logs
    assert "2 process(es) on cpu" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == str(out / "model.ckpt")
    assert sorted(p.name for p in out.iterdir()) == ["best.ckpt", "last.ckpt", "metrics.csv", "model.ckpt"]
    ckpt = Checkpoint.load(out / "model.ckpt")
    assert ckpt.provenance["world_size"] == 2 and ckpt.epoch == 2
    # 128 images / (16 per process x 2 processes) = 4 steps per epoch, so the last step's
    # learning rate is the schedule's at global step 8 of 8 (warm-up: a tenth of 2 epochs).
    expected_lr = lr_at(7, 8, round(0.2 * 4), 0.4 * 16 / 1024)
    assert ckpt.metrics[-1]["lr"] == pytest.approx(expected_lr, rel=1e-4)
    assert "train_loss_dsop_layer3" in (out / "metrics.csv").read_text().splitlines()[0]
