"""deepsquare profile's torch-free parts: the op map's resolution of runtime-renamed ops, ONNX Runtime trace
parsing, per-unit/per-kind sums, the decomposition against a baseline, the outputs, and benchmark_model's
op-profiling table (captured outputs in tests/fixtures/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepsquare.runtime.op_profile import (
    LAYOUT_REORDER,
    OP_MAP_SCHEMA,
    UNMAPPED,
    OpMap,
    OpProfileError,
    RuntimeProfile,
    attribute,
    decompose,
    op_map_path,
    parse_ort_trace,
    run_coverage,
)
from deepsquare.runtime.op_profile_report import agreement_line, decomposition_lines, write_outputs
from deepsquare.runtime.op_profile_tflite import parse_op_profiling, summarize

FIXTURES = Path(__file__).parent / "fixtures" / "benchmark_model"
BIN = Path(sys.executable).parent


def _op(name, op_type, module, kind, inputs, outputs, unit=None):
    return {"name": name, "type": op_type, "module": module, "unit": unit, "kind": kind, "inputs": inputs,
            "outputs": outputs}  # fmt: skip


# A unit of a ShuffleNetV2 with Square-Excitation, as the exporter's map lists it (names as in a real export).
MAP = {
    "schema": OP_MAP_SCHEMA,
    "format": "onnx",
    "ops": [
        _op("node_conv2d_6", "Conv", "stage2.1.branch2.0", "pointwise convolution", ["x"], ["conv2d_6"], "stage2.1"),
        _op("node_relu_4", "Relu", "stage2.1.branch2.2", "activation", ["conv2d_6"], ["relu_4"], "stage2.1"),
        _op("node_mul_65", "Mul", "stage2.1.attention", "Square-Excitation squeeze", ["relu_4"], ["mul_65"]),
        _op("node_mean_1", "ReduceMean", "stage2.1.attention", "Square-Excitation squeeze", ["mul_65"], ["mean_1"]),
        _op("node_div_1", "Div", "stage2.1.attention", "Square-Excitation gate", ["mean_1"], ["div_1"]),
        _op("node_fc", "Gemm", "fc", "classifier", ["div_1"], ["logits"]),
    ],
}


def test_runtime_renamed_and_fused_ops_resolve_to_the_exported_op() -> None:
    op_map = OpMap(MAP)
    # ONNX Runtime's NCHWc pass names the fused Conv+ReLU after the ReLU's output tensor: the Conv is meant.
    entry, note = op_map.resolve("relu_4_nchwc", "Conv")
    assert entry.name == "node_conv2d_6" and entry.kind == "pointwise convolution" and "fused" in note
    assert op_map.resolve("node_mean_1", "ReduceMean")[0].module == "stage2.1.attention"
    assert op_map.resolve("mean_1", "ReduceMean")[0].name == "node_mean_1"  # by output tensor
    assert op_map.resolve("node_nothing_like_it", "Add") == (None, "")
    assert op_map.resolve("node_mul_65", "Mul")[0].unit == "stage2.1"  # the unit of a module path (depth 2)


def test_a_broken_or_missing_map_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"")
    with pytest.raises(OpProfileError, match=r"model.onnx.modules.json is missing"):
        OpMap.load(model)
    op_map_path(model).write_text("{not json")
    with pytest.raises(OpProfileError, match="not a readable op map"):
        OpMap.load(model)
    with pytest.raises(OpProfileError, match="schema"):
        OpMap({"schema": "something/9", "ops": []})


def _trace(runs: list[list[tuple[str, str, int]]], run_us: int) -> list[dict]:
    """An ONNX Runtime trace: per run one model_run event holding its node events (durations in us)."""
    events, ts = [{"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 50}], 100
    for run in runs:
        events.append({"cat": "Session", "name": "model_run", "ts": ts, "dur": run_us})
        t = ts + 5
        for name, op_type, dur in run:
            events.append({"cat": "Node", "name": f"{name}_fence_before", "ts": t, "dur": 0, "args": {}})
            kernel = {"cat": "Node", "name": f"{name}_kernel_time", "ts": t, "dur": dur, "args": {"op_name": op_type}}
            events.append(kernel)
            t += dur + 1
        ts += run_us + 10
    return events


RUN = [("relu_4_nchwc", "Conv", 400), ("ReorderOutput_token_3", "ReorderOutput", 50),
       ("node_mul_65", "Mul", 30), ("node_mean_1", "ReduceMean", 60), ("node_div_1", "Div", 20),
       ("ReorderInput", "ReorderInput", 40), ("node_fc", "Gemm", 100), ("node_Mystery_1", "Mystery", 10)]  # fmt: skip


def test_trace_runs_warmup_left_out_reorders_placed_and_medians_taken() -> None:
    slow = [(n, t, d * 10 if n == "node_fc" else d) for n, t, d in RUN]  # one round the OS preempted
    runs, whole = parse_ort_trace(_trace([RUN, RUN, slow, RUN, RUN], 800), skip_runs=1)
    assert len(runs) == 4 and whole == [0.8] * 4 and [n for n, _, _ in runs[0]] == [n for n, _, _ in RUN]
    ops = {op.name: op for op in attribute(runs, OpMap(MAP))}
    assert ops["node_fc"].ms == pytest.approx(0.1)  # the median: the preempted round moves nothing
    assert ops["relu_4_nchwc"].module == "stage2.1.branch2.0"
    # A ReorderOutput belongs to the op before it, a ReorderInput to the op after it; both are layout reorders.
    assert (ops["ReorderOutput_token_3"].unit, ops["ReorderOutput_token_3"].kind) == ("stage2.1", LAYOUT_REORDER)
    assert (ops["ReorderInput"].module, ops["ReorderInput"].kind) == ("fc", LAYOUT_REORDER)
    assert (ops["node_Mystery_1"].unit, ops["node_Mystery_1"].kind) == (UNMAPPED, UNMAPPED)
    with pytest.raises(OpProfileError, match="model_run"):
        parse_ort_trace([{"cat": "Node", "name": "x_kernel_time", "ts": 1, "dur": 1}])


def _profile(model: str, scale: dict[str, float], whole: float) -> RuntimeProfile:
    runs, _ = parse_ort_trace(_trace([[(n, t, int(d * scale.get(n, 1))) for n, t, d in RUN]] * 3, 800))
    ops = attribute(runs, OpMap(MAP))
    if "gap" in model:  # the baseline has no excitation
        ops = [op for op in ops if "Excitation" not in op.kind]
    return RuntimeProfile("onnxruntime", model, "model.onnx", ops, whole_ms=whole, plain_ms=whole * 0.8, runs=3)


def test_sums_by_unit_and_kind_and_the_decomposition_against_a_baseline() -> None:
    sex, gap = _profile("sp+ss+sex", {}, 0.8), _profile("gap", {"node_fc": 0.5}, 0.65)
    units = {u: ms for u, ms, _ in sex.by("unit")}
    assert units["stage2.1"] == pytest.approx(0.4 + 0.05 + 0.03 + 0.06 + 0.02) and units["fc"] == pytest.approx(0.14)
    assert sex.op_sum_ms == pytest.approx(0.71) and sex.coverage == pytest.approx(0.71 / 0.8)
    delta = decompose(sex, gap)
    kinds = {row["kind"]: row["delta_ms"] for row in delta["kinds"]}
    assert kinds["Square-Excitation squeeze"] == pytest.approx(0.09) and kinds["classifier"] == pytest.approx(0.05)
    assert sum(kinds.values()) == pytest.approx(delta["delta_op_sum_ms"])
    lines = decomposition_lines(delta)
    assert any(line.strip().startswith("Square-Excitation squeeze +0.090 ms of +0.160 ms") for line in lines), lines


def test_the_agreement_line_says_by_how_much_and_why_when_off() -> None:
    runs, whole = parse_ort_trace(_trace([RUN, RUN, RUN], 800))
    assert run_coverage(runs, whole) == [pytest.approx(0.71 / 0.8)] * 3  # each run's op sum over its own time
    close = _profile("sp+ss+sex", {}, 0.75)
    assert "NOT within" not in agreement_line(close) and "add up to 94.7% of that run's time" in agreement_line(close)
    far = _profile("sp+ss+sex", {}, 1.2)
    assert "NOT within 10%: 40.8% of the time is outside the ops" in agreement_line(far)


def test_outputs_json_markdown_and_chart(tmp_path: Path) -> None:
    sex, gap = _profile("sp+ss+sex", {}, 0.8), _profile("gap", {}, 0.7)
    result = {"machine": "test", "profiles": [sex.to_dict(), gap.to_dict()], "against": [decompose(sex, gap)]}
    written = write_outputs(result, [sex, gap], tmp_path / "out")
    names = {p.name for p in written}
    assert {"profile.json", "profile.md"} <= names
    data = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert data["profiles"][0]["units"][0]["unit"] == "stage2.1" and data["against"][0]["baseline"] == "gap"
    md = (tmp_path / "out" / "profile.md").read_text()
    assert "| `stage2.1` |" in md and "Square-Excitation squeeze +0.090 ms" in md
    pytest.importorskip("matplotlib")
    assert (tmp_path / "out" / "profile-onnxruntime.png").read_bytes()[:4] == b"\x89PNG"


def test_benchmark_model_op_profiling_tables_both_layouts() -> None:
    rows = parse_op_profiling((FIXTURES / "linux_op_profiling_full.txt").read_text())
    assert len(rows) == 31 and rows[0]["node_type"] == "CONV_2D" and rows[-1]["name"].endswith(":30")
    summary = summarize(rows)
    # The op sum agrees with the tool's own average (2.9499e+06 us) of the same runs.
    assert summary["sum_ms"] == pytest.approx(2949.9, rel=1e-3) and next(iter(summary["by_node_type"])) == "CONV_2D"
    xnn = summarize(parse_op_profiling((FIXTURES / "xnnpack_op_profiling_excerpt.txt").read_text()))
    dw = next(r for r in xnn["ops"] if r["name"] == "Delegate/Convolution (NHWC, QC8) DWConv:1")
    assert dw["times_called"] == 13 and dw["ms_per_run"] == pytest.approx(13 * 0.051)  # avg ms is per call
    assert "3 op(s) ran outside the delegate" in xnn["notes"][0]
    assert parse_op_profiling((FIXTURES / "linux_op_profiling.txt").read_text()) == []  # init table only


def test_profile_parse_keeps_the_op_table_in_the_record(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "deepsquare"), "profile", "parse", str(FIXTURES / "linux_op_profiling_full.txt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert len(record["extra"]["op_profile"]["ops"]) == 31 and "DEPTHWISE_CONV_2D" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no/such/bundle"], "does not exist"),
        (["gap", "--threads", "1,2"], "--threads takes one value here"),
        (["gap", "--runs", "0"], "--runs must be >= 1"),
        (["gap", "--input-size", "3"], "--input-size must be between 8 and 4096"),
        (["gap", "--to", "nonsense"], "nonsense"),
    ],
)
def test_bad_flags_are_refused_before_torch(args: list[str], message: str) -> None:
    code = (
        "import sys\nfrom deepsquare.export.commands import main\n"
        "try:\n    main(['profile', *sys.argv[1:]])\nexcept SystemExit as exc:\n"
        "    assert 'torch' not in sys.modules, 'torch imported before the flags were checked'\n    raise\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_int8_layout_transposes_and_qdq_the_runtime_adds_are_placed_beside_their_op() -> None:
    run = [("QuantizeLinear_token_3", "QuantizeLinear", 5), ("node_conv2d_6", "Conv", 40),
           ("Transpose_token_9", "Transpose", 6), ("mean_1/duplicated", "ReduceMean", 3)]  # fmt: skip
    runs, _ = parse_ort_trace(_trace([run], 100))
    ops = {op.name: op for op in attribute(runs, OpMap(MAP))}
    assert (ops["QuantizeLinear_token_3"].module, ops["QuantizeLinear_token_3"].kind) == (
        "stage2.1.branch2.0",
        "int8 quantize/dequantize",
    )
    assert (ops["Transpose_token_9"].unit, ops["Transpose_token_9"].kind) == ("stage2.1", LAYOUT_REORDER)
    assert ops["mean_1/duplicated"].module == "stage2.1.attention"  # a node the runtime copied keeps its module
