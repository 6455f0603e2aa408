"""The op -> module map written beside each exported file (``model.onnx.modules.json``), read by ``deepsquare profile``.

An exported graph names its ops generically (``node_Split_349``), and ``onnxsim`` drops the module scopes the
ONNX exporter records in each node's metadata (``pkg.torch.onnx.name_scopes``, ``pkg.torch.onnx.class_hierarchy``).
So at export time, before simplification, each node's module path (``stage3.2.attention``) is read from that
metadata, its kind from the module itself (:data:`KIND_RULES`, the one registry of kinds), and the map of the
final graph is written beside the file: op name, op type, inputs, outputs, module, kind. The profiler then maps
every runtime event back to a module without torch (``deepsquare.runtime.op_profile``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from deepsquare.runtime.files import write_text_atomically
from deepsquare.runtime.op_profile import OP_MAP_SCHEMA, OTHER, QDQ, op_map_path, unit_of
from deepsquare.train.layers import (
    EleSquare,
    GeMPooling,
    GlobalAvgPool,
    NegSquare,
    SquareExcitation,
    SquarePooling,
    SquareSoftmin,
    SqueezeExcitation,
)
from deepsquare.train.models.resnet import BasicBlock, Bottleneck
from deepsquare.train.models.shufflenetv2 import InvertedResidual

KindRule = Callable[[nn.Module, str, bool], str]  # (module, op type, after the module's own reduction) -> kind


def _conv(module: nn.Module, op_type: str, after_reduction: bool) -> str:
    if module.groups > 1 and module.groups == module.in_channels:
        return "depthwise convolution"
    if tuple(module.kernel_size) == (1, 1):
        return "pointwise convolution"
    return "convolution"


def _two_phase(squeeze: str, gate: str) -> KindRule:
    """An attention module: its ops up to its reduction are the squeeze, the rest its gate."""
    return lambda module, op_type, after_reduction: gate if after_reduction else squeeze


# The one registry of module kinds, by module class (the first matching row wins; a subclass before its base).
# A string is the kind of every op the module runs itself; a function decides per op.
KIND_RULES: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], str | KindRule], ...] = (
    (SquareExcitation, _two_phase("Square-Excitation squeeze", "Square-Excitation gate")),
    (SqueezeExcitation, _two_phase("SE squeeze", "SE gate")),
    (SquarePooling, "Square-Pooling"),
    (GeMPooling, "GeM pooling"),
    (GlobalAvgPool, "global average pooling"),
    ((SquareSoftmin, NegSquare), "Square-Softmin"),
    (EleSquare, "Square-Encoding"),
    (InvertedResidual, "channel split/concat/shuffle"),
    ((BasicBlock, Bottleneck), "residual add"),
    (nn.Conv2d, _conv),
    (nn.Linear, "classifier"),
    (nn.BatchNorm2d, "batch norm"),
    ((nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Hardswish), "activation"),
    ((nn.MaxPool2d, nn.AvgPool2d), "spatial pooling"),
    (nn.Flatten, "reshape"),
)
# An op anywhere under one of these (class, child) keeps the kind of the child as a whole: SE's FC stack.
CLAIMED: tuple[tuple[type[nn.Module], str, str], ...] = ((SqueezeExcitation, "fc", "SE FCs"),)
QDQ_SUFFIXES = ("_QuantizeLinear", "_DequantizeLinear")
REDUCTIONS = {"ReduceMean", "ReduceSum", "GlobalAveragePool", "MEAN", "SUM", "aten.mean.dim"}


def kind_of(modules: dict[str, nn.Module], path: str | None, op_type: str, after_reduction: bool) -> str:
    """The kind of one op run by module ``path`` (``None``: no module recorded)."""
    if path is None or path not in modules:
        return OTHER
    parts = path.split(".") if path else []
    for depth in range(len(parts)):
        ancestor = modules.get(".".join(parts[:depth]))
        for cls, child, kind in CLAIMED:
            if isinstance(ancestor, cls) and parts[depth] == child:
                return kind
    module = modules[path]
    for classes, rule in KIND_RULES:
        if isinstance(module, classes):
            return rule if isinstance(rule, str) else rule(module, op_type, after_reduction)
    return f"{OTHER} ({type(module).__name__})" if path else OTHER


def _scopes(node: Any) -> tuple[str | None, str | None]:
    """(module path, module class) of an ONNX node from the exporter's metadata; (None, None) without it."""
    props = {p.key: p.value for p in node.metadata_props}
    if "pkg.torch.onnx.name_scopes" not in props:
        return None, None
    scopes = ast.literal_eval(props["pkg.torch.onnx.name_scopes"])
    classes = ast.literal_eval(props.get("pkg.torch.onnx.class_hierarchy", "[]"))
    # The last scope is the FX node itself; the one before is the innermost module ('' for the model).
    path = scopes[-2] if len(scopes) >= 2 else ""
    cls = classes[-2] if len(classes) >= 2 else None
    return path, cls


def onnx_scopes(graph: Any) -> dict[str, tuple[str | None, str | None]]:
    """Module path and class of every node of an exported (not yet simplified) ONNX model, by node name and by
    each output tensor name (the simplifier and ONNX Runtime rename nodes, not tensors)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for node in graph.graph.node:
        scope = _scopes(node)
        found[node.name] = scope
        for output in node.output:
            found.setdefault(f"tensor:{output}", scope)
    return found


def _lookup(scopes: dict[str, tuple[str | None, str | None]], node: Any) -> tuple[str | None, str | None]:
    if node.name in scopes:
        return scopes[node.name]
    for output in node.output:
        if f"tensor:{output}" in scopes:
            return scopes[f"tensor:{output}"]
    for suffix in QDQ_SUFFIXES:  # the int8 quantizer names a Q/DQ node after the tensor it quantizes
        if node.name.endswith(suffix) and f"tensor:{node.name.removesuffix(suffix)}" in scopes:
            return scopes[f"tensor:{node.name.removesuffix(suffix)}"]
    # A node a later pass made from an exported one (quantization: node_conv2d_quant): the longest name it extends.
    prefixes = [name for name in scopes if not name.startswith("tensor:") and node.name.startswith(name)]
    return scopes[max(prefixes, key=len)] if prefixes else (None, None)


def _common_module(paths: list[str]) -> str | None:
    """The deepest module holding every one of ``paths`` ('' is the model itself); None for no paths."""
    if not paths:
        return None
    split = [p.split(".") if p else [] for p in paths]
    common = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return ".".join(common)


def _fill_unscoped(graph: Any, found: list[tuple[str | None, str | None]], modules: dict[str, nn.Module]) -> None:
    """A node a rewrite pass left without a scope (the exporter's Split of ``x.chunk``) belongs to the deepest
    module holding all the nodes that read its outputs (else all that feed it)."""
    nodes = list(graph.graph.node)
    readers: dict[str, list[int]] = {}
    writers: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for tensor in node.input:
            readers.setdefault(tensor, []).append(i)
        for tensor in node.output:
            writers[tensor] = i
    for _ in range(4):  # a chain of unscoped nodes (a Split and the Q/DQ pairs after it) fills from its ends
        changed = False
        for i, node in enumerate(nodes):
            if found[i][0] is not None:
                continue
            near = [j for t in node.output for j in readers.get(t, [])]
            path = _common_module([p for j in near if (p := found[j][0]) is not None])
            if path is None:
                path = _common_module(
                    [p for t in node.input if t in writers and (p := found[writers[t]][0]) is not None]
                )
            if path is not None:
                found[i] = (path, type(modules[path]).__name__ if path in modules else None)
                changed = True
        if not changed:
            break


def onnx_op_map(graph: Any, scopes: dict[str, tuple[str | None, str | None]], model: nn.Module) -> dict[str, Any]:
    """The op map of the final ONNX graph ``graph``, from the ``scopes`` read before simplification."""
    modules = dict(model.named_modules())
    stages = set(getattr(model, "stage_names", ()))
    reduced: set[str] = set()  # modules whose own reduction already ran (graph order is topological)
    found = [_lookup(scopes, node) for node in graph.graph.node]
    _fill_unscoped(graph, found, modules)
    ops = []
    for node, (path, cls) in zip(graph.graph.node, found, strict=True):
        kind = kind_of(modules, path, node.op_type, path in reduced)
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and path is not None:
            kind = QDQ
        if path is not None and node.op_type in REDUCTIONS:
            reduced.add(path)
        ops.append(
            {
                "name": node.name,
                "type": node.op_type,
                "inputs": list(node.input),
                "outputs": list(node.output),
                "module": path,
                "unit": unit_of(path, 2 if path and path.split(".")[0] in stages else 1),
                "class": cls.rsplit(".", 1)[-1] if cls else None,
                "kind": kind,
            }
        )
    return {"schema": OP_MAP_SCHEMA, "format": "onnx", "ops": ops}


def write_op_map(model_file: Path, op_map: dict[str, Any]) -> Path:
    """Write ``op_map`` beside ``model_file`` (``<file>.modules.json``); its path."""
    path = op_map_path(model_file)
    write_text_atomically(path, json.dumps({**op_map, "model": model_file.name}, indent=1) + "\n")
    return path
