"""The int8 sensitivity sweep: the greedy keep-float choice on given measurements, its report, and one real sweep."""

import json
from pathlib import Path

import pytest

from deepsquare.export.errors import ExportError
from deepsquare.export.sensitivity_choice import Measurement, alone_label, damage_order, greedy_fallback
from deepsquare.export.sensitivity_report import JSON_NAME, MARKDOWN_NAME, markdown, summary, write_report


def measured(label: str, agreement: float, diff: float, keep: tuple[str, ...] = ()) -> Measurement:
    return Measurement(label, keep, len(keep), agreement, 90.0 + diff, 90.0, diff, (diff - 1.0, diff + 1.0))


def alone(kind: str, agreement: float, diff: float = 0.0) -> Measurement:
    return measured(alone_label(kind), agreement, diff)


class Recorder:
    """A ``measure`` function that answers from a table (kept kinds -> agreement, diff) and records each call."""

    def __init__(self, table: dict[tuple[str, ...], tuple[float, float]]) -> None:
        self.table, self.calls = table, []

    def __call__(self, kept: tuple[str, ...]) -> Measurement:
        self.calls.append(kept)
        agreement, diff = self.table[kept]
        return measured("keep float: " + ", ".join(kept), agreement, diff, kept)


def test_the_goal_needs_both_agreement_and_top1() -> None:
    assert measured("a", 99.0, -1.0).meets_goal()
    assert not measured("a", 98.9, 0.0).meets_goal()
    assert not measured("a", 100.0, -1.1).meets_goal()
    assert not measured("a", 100.0, +1.5).meets_goal()  # "within 1 point" both ways
    assert not Measurement("a", (), 0, error="crashed").meets_goal()


def test_a_file_that_meets_the_goal_all_int8_keeps_nothing_float() -> None:
    measure = Recorder({})
    chosen = greedy_fallback(measured("all int8", 99.5, 0.0), [alone("stem", 90.0)], measure)
    assert (chosen.keep_float, chosen.steps, chosen.reached, measure.calls) == ((), [], True, [])


def test_the_most_damaging_kinds_are_kept_float_one_at_a_time_until_the_goal() -> None:
    kinds = [alone("stem", 99.7), alone("depthwise", 97.0, -0.5), alone("classifier", 95.0), alone("gap", 97.0, -2)]
    assert damage_order(kinds) == ["classifier", "gap", "depthwise", "stem"]
    measure = Recorder({("classifier",): (98.0, -1.5), ("classifier", "gap"): (99.2, -0.3)})
    chosen = greedy_fallback(measured("all int8", 93.0, -4.0), kinds, measure)
    assert measure.calls == [("classifier",), ("classifier", "gap")]  # stopped at the first file that made it
    assert chosen.keep_float == ("classifier", "gap") and chosen.reached
    assert [m.keep_float for m in chosen.steps] == measure.calls


def test_a_kind_whose_file_failed_alone_is_kept_float_first() -> None:
    crashed = Measurement(alone_label("square-excitation"), (), 0, error="XNNPACK refused it")
    assert damage_order([alone("stem", 90.0), crashed])[0] == "square-excitation"


def test_when_no_file_reaches_the_goal_the_closest_one_is_chosen_and_it_says_so() -> None:
    kinds = [alone("stem", 95.0), alone("classifier", 96.0)]
    measure = Recorder({("stem",): (98.5, -0.2), ("stem", "classifier"): (98.0, -0.2)})
    chosen = greedy_fallback(measured("all int8", 90.0, -3.0), kinds, measure)
    assert not chosen.reached
    assert measure.calls == [("stem",), ("stem", "classifier")]  # every kind float, still short
    assert chosen.keep_float == ("stem",)


def record() -> dict:
    step = vars(measured("keep float: classifier", 99.5, -0.3, ("classifier",)))
    return {
        "checkpoint": "model.ckpt",
        "arch": "vanilla_cnn",
        "variant": "sp",
        "data": "364 test images of --data digits",
        "calibration": 64,
        "cpu": "AMD EPYC, 2 cores",
        "load": [1.5, 2.0],
        "seconds": 12.0,
        "goal": {"agreement": 99.0, "top1": 1.0},
        "skipped": {"executorch": "executorch not installed: pip install 'deepsquare[executorch]'"},
        "formats": {
            "onnx": {
                "units": {"stem": ["features.0"], "classifier": ["fc"]},
                "all_int8": vars(measured("all int8", 97.0, -2.0)),
                "alone": [vars(alone("stem", 99.9)), vars(alone("classifier", 97.1, -1.9))],
                "fallback": [step],
                "keep_float": ["classifier"],
                "keep_float_paths": ["fc"],
                "reached": True,
                "seconds": 10.0,
            }
        },
    }


def test_the_report_has_a_row_per_file_and_the_choice(tmp_path: Path) -> None:
    text = markdown(record())
    assert "| all int8 | none | 97.0% | -2.0 (-3.0 to -1.0) |  |" in text
    assert "| classifier alone int8 |" in text and "| keep float: classifier | 1 | 99.5% |" in text
    assert "Choice: keep float classifier: `fc` (reaches the goal" in text
    assert "executorch" in text and "deepsquare[executorch]" in text
    written = write_report(record(), tmp_path / "bundle")
    assert [p.name for p in written] == [JSON_NAME, MARKDOWN_NAME]
    assert json.loads(written[0].read_text())["formats"]["onnx"]["keep_float_paths"] == ["fc"]


def test_the_docs_summary_shows_each_format_with_and_without_the_fallback() -> None:
    table = summary([record()])
    row = (
        "| vanilla_cnn | `sp` | onnx | 90.0% | 97.0% | -2.0 (-3.0 to -1.0) | classifier | 99.5% | -0.3 (-1.3 to +0.7) |"
    )
    assert row + " yes | 10 s |" in table
    assert "| vanilla_cnn | `sp` | onnx | stem 99.9%, classifier 97.1% |" in table
    assert "| vanilla_cnn | `sp` | executorch | skipped: executorch not installed" in table


def test_a_bad_record_writes_nothing(tmp_path: Path) -> None:
    bad = record()
    del bad["formats"]["onnx"]["alone"]
    with pytest.raises(KeyError):
        write_report(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_formats_without_int8_are_skipped_and_unknown_ones_refused() -> None:
    from deepsquare.export.sensitivity import int8_formats

    names, skipped = int8_formats("onnx,coreml")
    assert "coreml" in skipped and "int8" in skipped["coreml"] and "coreml" not in names
    with pytest.raises(ExportError, match="unknown format 'onyx'"):
        int8_formats(["onyx"])


@pytest.mark.slow
def test_a_sweep_measures_every_kind_and_writes_its_report(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from export_helpers import write_checkpoint

    from deepsquare.export.sensitivity import sweep

    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp")
    lines: list[str] = []
    result = sweep(ckpt, ["onnx"], images=32, calibration=16, out=tmp_path / "report", log=lines.append)
    onnx = result.formats["onnx"]
    kinds = list(onnx.units)
    assert "stem" in kinds and "classifier" in kinds and "square-pooling" in kinds
    assert [m.label for m in onnx.alone] == [alone_label(k) for k in kinds]
    assert all(m.error is None and m.agreement is not None for m in [onnx.all_int8, *onnx.alone, *onnx.fallback])
    assert onnx.alone[0].modules == sum(len(onnx.units[k]) for k in kinds[1:])  # every other kind kept float
    assert lines[0].startswith(f"sensitivity onnx 1/{1 + len(kinds)}: all int8: agreement ")
    assert onnx.reached == onnx.chosen().meets_goal()
    assert set(result.chosen()["onnx"]) == set(onnx.keep_float_paths())
    assert "32 test images" in result.data or "32 val images" in result.data
    saved = json.loads((tmp_path / "report" / JSON_NAME).read_text())
    assert saved["formats"]["onnx"]["keep_float"] == list(onnx.keep_float)


@pytest.mark.slow
def test_defaults_only_measures_all_int8_and_the_formats_default(tmp_path: Path) -> None:
    """``--defaults-only`` (the docs' table): two files per format, all int8 and ``--keep-float auto``."""
    pytest.importorskip("onnxruntime")
    from export_helpers import write_checkpoint

    from deepsquare.export.int8_units import DEFAULT_KEEP_FLOAT
    from deepsquare.export.sensitivity_cli import main

    assert DEFAULT_KEEP_FLOAT["onnx"] == ("square-softmin",)
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp+ss")
    assert main([str(ckpt), "--to", "onnx", "--defaults-only", "--out", str(tmp_path / "table")]) == 0
    saved = json.loads((tmp_path / "table" / "vanilla_cnn-sp+ss" / JSON_NAME).read_text())
    onnx = saved["formats"]["onnx"]
    assert onnx["alone"] == []
    assert [m["keep_float"] for m in onnx["fallback"]] == [["square-softmin"]]
    assert onnx["keep_float"] == ["square-softmin"] and onnx["keep_float_paths"]


def test_calibration_follows_calib_while_evaluation_stays_on_the_labelled_split(tmp_path: Path) -> None:
    """``deepsquare export --calib X --sensitivity``: the sweep's int8 files calibrate on X, as the shipped ones do."""
    import torch
    from export_helpers import write_checkpoint

    from deepsquare.export.sensitivity import prepare
    from deepsquare.train.checkpoint import Checkpoint
    from deepsquare.train.data import load_data

    path = write_checkpoint(tmp_path, "vanilla_cnn", "sp")  # trained on synthetic:64
    ckpt = Checkpoint.load(path)
    subject = prepare(path, None, 8, 4, calib="digits")
    assert torch.equal(subject.calibration, ckpt.normalize(load_data("digits", 32).train.images[:4]))
    assert "synthetic" in subject.data.describe() and len(subject.reference) == 8
    default = prepare(path, None, 8, 4)
    assert torch.equal(default.calibration, ckpt.normalize(load_data("synthetic:64", 32).train.images[:4]))


@pytest.mark.slow
def test_a_stopped_sweep_leaves_no_temporary_folder(tmp_path: Path) -> None:
    """SIGTERM during a sweep: one line, exit 128 + 15, and the converters' temporary folder is gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from export_helpers import write_checkpoint

    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "sp")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = [sys.executable, "-m", "deepsquare.export.sensitivity_cli", str(ckpt), "--to", "onnx"]
    child = subprocess.Popen(
        [*command, "--out", str(tmp_path / "table")],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(scratch.glob("deepsquare-sensitivity-*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() is None, "the sweep ended before it could be stopped"
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert not list(scratch.glob("deepsquare-sensitivity-*"))
    assert not (tmp_path / "table").exists()


def test_the_table_driver_refuses_a_bad_format_once_before_loading_anything(tmp_path: Path, capsys) -> None:
    from deepsquare.export.sensitivity_cli import main

    with pytest.raises(SystemExit) as refused:
        main([str(tmp_path / "missing.ckpt"), "--to", "onyx", "--out", str(tmp_path / "table")])
    assert refused.value.code == 2 and "unknown format 'onyx'" in capsys.readouterr().err
    assert not (tmp_path / "table").exists()
