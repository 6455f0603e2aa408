"""The delegation report: which ops XNNPACK (TFLite, ExecuTorch) and ONNX Runtime's providers take, each op left
outside named with its module, and ``--require-delegated`` refusing a graph that leaves one out."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from deepsquare.export.delegation import delegation_summary, not_delegated
from deepsquare.export.tflite_metadata import tflite_op_names

pytest.importorskip("onnxruntime")


class Shuffle(nn.Module):
    """A channel permutation by indexing: TFLite's GATHER_ND and ExecuTorch's aten.index, neither taken by XNNPACK."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        order = torch.arange(x.shape[1]).view(2, -1).t().reshape(-1)
        return x[:, order]


class LeavesOneOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.shuffle = Shuffle()
        self.head = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.shuffle(torch.relu(self.conv(x))))
        return self.fc(x.mean((2, 3), keepdim=True).flatten(1))


def test_tflite_names_the_op_left_outside_xnnpack_and_its_module(tmp_path: Path) -> None:
    litert_torch = pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from deepsquare.export.delegation import tflite_delegation

    model = litert_torch.to_channel_last_io(LeavesOneOut().eval(), args=[0]).eval()
    path = tmp_path / "model.tflite"
    litert_torch.convert(model, (torch.randn(1, 16, 16, 3),)).export(str(path))
    found = tflite_delegation(path)
    assert found["outside_by_op"] == {"GATHER_ND": 1}
    assert found["outside"] == [{"op": "GATHER_ND", "module": "shuffle"}]
    assert found["delegated"] == found["ops"] - 1
    assert found["partitions"] == 2  # the gather splits the graph in two
    assert "outside: GATHER_ND x1" in delegation_summary(found)
    why = not_delegated(found)
    assert why is not None and "GATHER_ND in shuffle" in why


def test_tflite_fully_delegated_graph_has_nothing_outside(tmp_path: Path) -> None:
    litert_torch = pytest.importorskip("litert_torch")
    from deepsquare.export.delegation import tflite_delegation

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).eval()
    path = tmp_path / "model.tflite"
    litert_torch.convert(litert_torch.to_channel_last_io(model, args=[0]), (torch.randn(1, 8, 8, 3),)).export(str(path))
    found = tflite_delegation(path)
    assert found["outside_count"] == 0 and found["delegated"] == found["ops"] and found["partitions"] == 1
    assert not_delegated(found) is None


def test_executorch_names_the_op_left_outside_xnnpack_and_its_module() -> None:
    pytest.importorskip("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from deepsquare.export.delegation import executorch_delegation

    program = torch.export.export(LeavesOneOut().eval(), (torch.randn(1, 3, 16, 16),))
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    found = executorch_delegation(lowered)
    assert found["partitions"] == 2
    assert {"op": "aten.index.Tensor", "module": "shuffle"} in found["outside"]
    assert all(o["module"] == "shuffle" for o in found["outside"]), found["outside"]  # its index arithmetic too
    assert found["delegated"] > 0 and found["ops"] == found["delegated"] + found["outside_count"]


def test_onnxruntime_providers_reorders_and_mobile_partitions(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    from deepsquare.export.delegation_ort import onnxruntime_delegation

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)).eval()
    path = tmp_path / "model.onnx"
    batch = torch.export.Dim("batch", min=1, max=64)
    example = (torch.randn(2, 3, 16, 16),)
    torch.onnx.export(model, example, str(path), dynamo=True, dynamic_shapes=({0: batch},), external_data=False)
    found = onnxruntime_delegation(path)
    assert sum(found["providers"].values()) == found["nodes_optimized"] > 0
    assert set(found["providers"]) == {"CPUExecutionProvider"}
    assert set(found["nchwc_reorders"]) == {"ReorderInput", "ReorderOutput"}
    nnapi = found["mobile"]["NNAPI"]
    assert found["mobile"]["dynamic_inputs"] == ["input"] or found["mobile"]["dynamic_inputs"]
    # The batch dimension is dynamic: the checker gives NNAPI nothing as is, everything with fixed shapes.
    assert nnapi["as_is"]["partitions"] == 0 and nnapi["as_is"]["unsupported_for_dynamic_shape"] > 0
    assert nnapi["fixed"]["partitions"] == 1 and nnapi["fixed"]["supported"] == nnapi["fixed"]["nodes"]
    assert "NNAPI 0 (1 with fixed shapes)" in delegation_summary(found)
    json.dumps(found)  # goes into export_report.json as is


def test_require_delegated_fails_a_format_with_an_op_outside_and_names_it(tmp_path: Path) -> None:
    from deepsquare.export.format_reports import ReportOptions, add_reports
    from deepsquare.export.parity import compare
    from deepsquare.export.verify import FormatOutcome
    from deepsquare.runtime.formats import FORMATS

    delegation = {
        "delegate": "XNNPACK",
        "ops": 12,
        "delegated": 11,
        "partitions": 2,
        "outside_count": 1,
        "outside_by_op": {"aten.index.Tensor": 1},
        "outside": [{"op": "aten.index.Tensor", "module": "stage2.0"}],
    }
    logits = np.eye(3, dtype=np.float32)
    parity = compare("executorch", "executorch", "fp32", logits, logits)

    def outcome() -> FormatOutcome:
        return FormatOutcome(True, parity=parity, info={"delegation": dict(delegation)}, outputs=logits)

    kept = outcome()
    add_reports(FORMATS["executorch"], tmp_path, nn.Identity(), torch.zeros(1), "fp32", kept, ReportOptions())
    assert kept.passed and kept.reason == ""  # reported, not judged, without the flag
    refused = outcome()
    options = ReportOptions(require_delegated=True)
    add_reports(FORMATS["executorch"], tmp_path, nn.Identity(), torch.zeros(1), "fp32", refused, options)
    assert not refused.passed
    assert "aten.index.Tensor in stage2.0" in refused.reason and "--require-delegated" in refused.reason


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "file"), [("tflite", "model.tflite"), ("executorch", "model.pte")])
def test_shufflenet_is_one_xnnpack_partition_at_both_stems(tmp_path: Path, fmt: str, file: str) -> None:
    """Each format's deploy form of the channel shuffle (reshape-transpose-reshape), the split (TFLite's SPLIT,
    ExecuTorch's slices) and the ImageNet stem's max pool (TFLite: padded with zeros, its input being a ReLU's) is
    taken by XNNPACK, so --require-delegated passes; a gather shuffle, ExecuTorch's split_with_sizes and TFLite's
    -inf pad (PADV2) each stayed outside it."""
    pytest.importorskip("litert_torch" if fmt == "tflite" else "executorch")
    from export_helpers import write_checkpoint

    from deepsquare.export.commands import main

    for size, stem in ((32, "cifar"), (224, "imagenet")):
        ckpt = write_checkpoint(tmp_path / stem, "shufflenetv2_x0_5", "sp+sex", size=size, stem=stem)
        out = tmp_path / f"bundle-{stem}"
        args = ["export", str(ckpt), "--to", fmt, "--out", str(out), "--samples", "0", "--require-delegated"]
        assert main(args) == 0
        delegation = json.loads((out / "export_report.json").read_text())["formats"][fmt]["delegation"]
        assert delegation["outside_by_op"] == {} and delegation["partitions"] == 1 and (out / file).exists()
        if fmt == "tflite":
            assert delegation["delegated"] == delegation["ops"] == len(tflite_op_names(out / file))


@pytest.mark.slow
def test_export_require_delegated_refuses_and_publishes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    """A model with ops XNNPACK does not take (ShuffleNetV2 with its shuffle as a gather: GATHER_ND) is refused,
    each op kind named once with its count and modules, and nothing is published."""
    pytest.importorskip("litert_torch")
    from export_helpers import write_checkpoint

    from deepsquare.export.commands import main
    from deepsquare.train.models import shufflenetv2

    monkeypatch.setitem(shufflenetv2.SHUFFLE_FOR_FORMAT, "tflite", shufflenetv2.channel_shuffle)
    ckpt = write_checkpoint(tmp_path, "shufflenetv2_x0_5", "sp+sex")
    out = tmp_path / "bundle"
    code = main(["export", str(ckpt), "--to", "tflite", "--out", str(out), "--samples", "0", "--require-delegated"])
    assert code == 1
    assert not (out / "model.tflite").exists() and not (out / "model.json").exists()
    record = json.loads((out / "export_report.json").read_text())["formats"]["tflite"]
    assert record["parity"]["passed"] and not record["passed"]
    assert record["delegation"]["outside_by_op"] == {"GATHER_ND": 16}
    line = "GATHER_ND x16 in stage2.0, stage2.1, stage2.2 and 13 more; nothing was published"
    assert line in capsys.readouterr().err
