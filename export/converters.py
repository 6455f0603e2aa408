"""One converter function per format (the Ultralytics way); the formats' facts are the table
in ``deepsquare.runtime.formats``.

Every converter writes ``FORMATS[name].file`` into ``folder`` (a staging folder the caller
later moves into place) and returns facts for the report. ``meta`` is read, never changed: it
already lists this format's entry, so formats that embed metadata embed the final one.
Converter modules are imported inside the function, so a missing one is a clear error naming
the extra to install; their chatter is hidden by the caller (``deepsquare.runtime.quiet``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS

from .coreml import convert_coreml
from .delegation import executorch_delegation
from .int8_units import under_any
from .needs import need
from .op_map import onnx_op_map, onnx_scopes, write_op_map
from .prologue import PixelPrologue
from .quantize import quantize_onnx_int8
from .quantize_executorch import quantize_program
from .quantize_tflite import cast_weights_fp16, kept_scopes, quantize_int8
from .tflite_metadata import add_tflite_metadata, tflite_op_names

Converter = Callable[..., dict[str, Any]]
CONVERTERS: dict[str, Converter] = {}


def converter(name: str) -> Callable[[Converter], Converter]:
    """Register the converter of format ``name`` (a row of ``deepsquare.runtime.formats.FORMATS``)."""

    def register(fn: Converter) -> Converter:
        CONVERTERS[name] = fn
        return fn

    return register


# --- ONNX -------------------------------------------------------------------------------
@converter("onnx")
def export_onnx(
    model: nn.Module,
    example: Tensor,
    folder: Path,
    meta: BundleMeta,
    precision: str = "fp32",
    calibration: Tensor | None = None,
    keep_float: tuple[str, ...] = (),
    **_: Any,
) -> dict[str, Any]:
    """torch.onnx (dynamo) -> onnxsim -> int8: ORT's QDQ quantizer, the nodes of ``keep_float`` modules in float."""
    onnx = need("onnx", "onnx")
    need("onnxscript", "onnx")
    onnxsim = need("onnxsim", "onnx")
    path = folder / FORMATS["onnx"].file
    batch = torch.export.Dim("batch", min=1, max=4096)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            external_data=False,
            input_names=[FORMATS["onnx"].input_name],
            output_names=[FORMATS["onnx"].output_name],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        program.save(str(raw))
        graph = onnx.load(str(raw))
    scopes = onnx_scopes(graph)  # the module of each node: the simplifier drops this metadata
    nodes_before = len(graph.graph.node)
    simplified, ok = onnxsim.simplify(graph)
    if ok:
        graph = simplified
    kept: dict[str, Any] = {}
    if precision == "int8":
        graph, scopes, kept = onnx_int8(
            graph, scopes, model, calibration if calibration is not None else example, keep_float
        )
    del graph.metadata_props[:]
    for key, value in meta.flat_metadata().items():
        graph.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
    op_map = write_op_map(path, onnx_op_map(graph, scopes, model))
    return {
        "file": path.name,
        "op_map": op_map.name,
        "precision": precision,
        "nodes_before_simplify": nodes_before,
        "nodes_after_simplify": len(graph.graph.node),
        "simplified": bool(ok),
        "op_types": sorted({n.op_type for n in graph.graph.node}),
        **kept,
    }


def onnx_int8(
    graph: Any, scopes: dict, model: nn.Module, calibration: Tensor, keep_float: tuple[str, ...]
) -> tuple[Any, dict, dict[str, Any]]:
    """The int8 graph, the scopes that map its nodes to modules, and what it kept float (for the report).

    The module of each simplified node is read once, before quantization (op_map fills the exporter's unscoped
    nodes, the Split of ``x.chunk``, from their neighbours); the Q/DQ pairs the quantizer adds between a Split and
    the unit before it would otherwise pull the Split into that unit."""
    paths = tuple(f"model.{p}" for p in keep_float) if isinstance(model, PixelPrologue) else keep_float
    ops = onnx_op_map(graph, scopes, model)["ops"]
    modules = {op["name"]: op["module"] for op in ops}
    known = {
        key: (op["module"], op["class"]) for op in ops for key in (op["name"], *(f"tensor:{t}" for t in op["outputs"]))
    }
    kept = {"keep_float": list(keep_float), "float_ops": sum(under_any(m, paths) for m in modules.values())}
    return quantize_onnx_int8(graph, calibration, paths, modules), {**scopes, **known}, kept


# --- TFLite -----------------------------------------------------------------------------
@converter("tflite")
def export_tflite(
    model: nn.Module,
    example: Tensor,
    folder: Path,
    meta: BundleMeta,
    precision: str = "fp32",
    calibration: Tensor | None = None,
    keep_float: tuple[str, ...] = (),
    **_: Any,
) -> dict[str, Any]:
    """litert_torch -> ``.tflite`` (NHWC in and out); int8: ai-edge-quantizer, the ops of ``keep_float`` modules
    in float (``deepsquare.export.quantize_tflite``); fp16: float16 weights."""
    litert_torch = need("litert_torch", "tflite")
    need("ai_edge_litert", "tflite")
    path = folder / FORMATS["tflite"].file
    if example.dtype == torch.uint8:  # --input uint8: the prologue takes NHWC pixels already (export/prologue.py)
        nhwc_model, sample = model.eval(), example[:1].contiguous()
    else:  # NHWC in and out of the graph, so the converter emits no TRANSPOSE for the input.
        nhwc_model = litert_torch.to_channel_last_io(model, args=[0]).eval()
        sample = example[:1].permute(0, 2, 3, 1).contiguous()
    edge = litert_torch.convert(nhwc_model, (sample,))
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.tflite"
        edge.export(str(float_path))
        buf = float_path.read_bytes()
        kept: dict[str, Any] = {}
        if precision == "int8":
            paths = tuple(f"model.{p}" for p in keep_float) if isinstance(model, PixelPrologue) else keep_float
            kept = {"keep_float": list(keep_float), "float_ops": len(kept_scopes(float_path, paths))}
            buf = quantize_int8(float_path, calibration if calibration is not None else example, paths)
        elif precision == "fp16":
            buf = cast_weights_fp16(float_path)
    labels = "\n".join(meta.classes).encode()
    buf = add_tflite_metadata(buf, {"deepsquare_bundle": meta.to_json().encode(), "labels.txt": labels})
    path.write_bytes(buf)
    ops = tflite_op_names(buf)
    return {"file": path.name, "precision": precision, "op_types": sorted(set(ops)), "op_count": len(ops), **kept}


# --- Core ML ----------------------------------------------------------------------------
@converter("coreml")
def export_coreml(
    model: nn.Module, example: Tensor, folder: Path, meta: BundleMeta, precision: str = "fp16", **_: Any
) -> dict[str, Any]:
    return convert_coreml(model, example, folder, meta, precision=precision)


# --- ExecuTorch -------------------------------------------------------------------------
@converter("executorch")
def export_executorch(
    model: nn.Module,
    example: Tensor,
    folder: Path,
    meta: BundleMeta,
    precision: str = "fp32",
    calibration: Tensor | None = None,
    keep_float: tuple[str, ...] = (),
    **_: Any,
) -> dict[str, Any]:
    """torch.export -> edge dialect -> XNNPACK-lowered ``.pte`` (batch 1, NCHW), PyTorch's on-device format; int8:
    PT2E static quantization first (``deepsquare.export.quantize_executorch``)."""
    need("executorch", "executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    path = folder / FORMATS["executorch"].file
    quantized: dict[str, Any] = {}
    if precision == "int8":
        program, quantized = quantize_program(model, example, calibration, keep_float)
    else:
        program = torch.export.export(model.eval(), (example[:1].contiguous(),))
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    ops = sorted({str(node.target) for node in lowered.exported_program().graph.nodes if node.op == "call_function"})
    delegation = executorch_delegation(lowered)  # export/delegation.py: before to_executorch() rewrites the program
    path.write_bytes(lowered.to_executorch().buffer)
    delegated = sum("executorch_call_delegate" in op for op in ops)
    return {
        "file": path.name,
        "op_types": ops,
        "xnnpack_delegated": bool(delegated),
        "delegation": delegation,
        "metadata": "model.json only (a .pte has no metadata slot)",
        "precision": precision,
        **quantized,
    }
