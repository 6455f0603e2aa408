"""deepsquare profile end to end: two tiny ShuffleNetV2 x0.5 bundles (sp+ss+sex and gap, 64 px, untrained) exported
with their op maps, profiled in ONNX Runtime, the difference decomposed by module kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_helpers import write_checkpoint

from deepsquare.export.commands import COMMANDS, command_parser, main
from deepsquare.export.profile_cli import match_baseline
from deepsquare.runtime.op_profile import op_map_path

ARCH = "shufflenetv2_x0_5"
UNITS = [f"stage{s}.{u}" for s, n in ((2, 4), (3, 8), (4, 4)) for u in range(n)]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import deepsquare as ds

    root = tmp_path_factory.mktemp("profile")
    out = {}
    for variant in ("sp+ss+sex", "gap"):
        checkpoint = write_checkpoint(root / variant, ARCH, variant, size=64)
        out[variant] = Path(ds.export(checkpoint, to="onnx", out=root / variant / "export", jobs=1, log=None).out)
    return out


@pytest.mark.slow  # two ONNX exports (~20 s each on 2 cores) and a profile
def test_profile_maps_every_unit_and_decomposes_against_gap(bundles, tmp_path, capsys) -> None:
    sex, gap = bundles["sp+ss+sex"], bundles["gap"]
    op_map = json.loads(op_map_path(sex / "model.onnx").read_text())  # shipped in the bundle, beside the model
    assert {op["unit"] for op in op_map["ops"]} >= {*UNITS, "pool", "fc"}
    assert not [op for op in op_map["ops"] if op["module"] is None], "an exported op without its module"
    code = main(["profile", str(sex), "--against", str(gap), "--runs", "6", "--warmup", "2", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads((tmp_path / "profile.json").read_text())
    mine, base = result["profiles"]
    units = {row["unit"] for row in mine["units"]}
    assert {*UNITS, "conv1", "conv5", "pool", "fc"} <= units and "unmapped" not in units
    kinds = {row["kind"] for row in mine["kinds"]}
    assert {"Square-Excitation squeeze", "Square-Excitation gate", "Square-Pooling", "depthwise convolution"} <= kinds
    assert "layout reorder (runtime-inserted)" in kinds  # ONNX Runtime's NCHWc reorders, placed in their units
    assert "global average pooling" in {row["kind"] for row in base["kinds"]}
    # Loose: a loaded 2-core machine preempts runs between kernels; the table says by how much when it is off.
    assert 0.3 < mine["coverage"] <= 1.05 and "of that run's time" in printed
    delta = {row["kind"]: row["delta_ms"] for row in result["against"][0]["kinds"]}
    assert delta["Square-Excitation squeeze"] > 0 and delta["Square-Excitation gate"] > 0
    assert delta["global average pooling"] < 0
    assert "Square-Excitation squeeze +" in printed and " ms of " in printed
    assert (tmp_path / "profile.md").is_file() and (tmp_path / "profile-onnxruntime.png").is_file()
    # A baseline given as a variant name takes the bundle's arch, input size and classes, unless given as flags.
    parser = command_parser(next(c for c in COMMANDS if c.name == "profile"), "deepsquare profile")
    for words, size in (([], 64), (["--input-size", "96"], 96)):
        args = parser.parse_args([str(sex), "--against", "gap", *words])
        args.given = [str(sex), "--against", "gap", *words]
        match_baseline(args)
        assert (args.arch, args.input_size, args.num_classes) == (ARCH, size, 10)


@pytest.mark.slow  # two ExecuTorch lowerings with ETRecords (~1-2 min on 2 cores) and a profile
def test_executorch_events_map_to_units_and_a_bundle_is_refused(bundles, tmp_path, capsys) -> None:
    args = ["sp+ss+sex", "--against", "gap", "--to", "executorch", "--input-size", "32", "--num-classes", "10"]
    code = main(["profile", *args, "--runs", "4", "--warmup", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    mine, base = json.loads((tmp_path / "profile.json").read_text())["profiles"]
    units = {r["unit"] for r in mine["units"]}
    assert base["model"] == "gap" and mine["runtime"] == "executorch"
    # XNNPACK takes the whole ExecuTorch form of ShuffleNetV2 (shuffle, split and all): one partition, one event,
    # counted in the model; what is inside it is XNNPACK's operators, named without modules.
    assert units == {"(model)"} and {row["kind"] for row in mine["kinds"]} == {"XNNPACK partition"}
    assert "XNNPACK's operators, recorded without modules" in printed and "DWConv" in printed
    assert 0.3 < mine["coverage"] <= 1.05
    with pytest.raises(SystemExit) as refused:  # a bundle's .pte ships no ETRecord: a usage error, exit 2
        main(["profile", str(bundles["gap"]), "--to", "executorch"])
    assert refused.value.code == 2 and "ETRecord" in capsys.readouterr().err
