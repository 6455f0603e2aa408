"""runtime/probe.py: a model file is opened and run once in a child process; a crash there is a reason, not ours."""

from pathlib import Path

import pytest
import torch

from deepsquare.runtime import probe


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "model.onnx"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False)
    return path


def test_a_good_file_runs_and_a_broken_one_says_why(small_onnx: Path, tmp_path: Path) -> None:
    assert probe.crash_reason("onnx", small_onnx, None, 1, 16) is None
    broken = tmp_path / "model.onnx"
    broken.write_bytes(small_onnx.read_bytes()[:100])
    reason = probe.crash_reason("onnx", broken, None, 1, 16)
    assert reason and "\n" not in reason and len(reason) <= 300


def test_a_child_killed_by_a_signal_is_named(monkeypatch, small_onnx: Path) -> None:
    monkeypatch.setattr(probe, "CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert probe.crash_reason("onnx", small_onnx, None, 1, 16) == "the runtime crashed (SIGSEGV) opening or running it"
    monkeypatch.setattr(probe, "CHILD", "import time; time.sleep(30)")
    assert probe.crash_reason("onnx", small_onnx, None, 1, 16, timeout_s=1) == "it did not finish one run in 1 s"
