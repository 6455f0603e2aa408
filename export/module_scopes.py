"""The PyTorch module each exported op or tensor came from, read back from what each exporter records.

- TFLite (litert_torch): every tensor name is the module scope of the op that wrote it, e.g.
  ``...ChannelLastIOWrapper/...ShuffleNetV2_wrapped/...Sequential_stage2/...InvertedResidual_0`` -> ``stage2.0``;
  a fused op names each scope it fused, separated by ``;;`` (the activation first).
- ONNX (torch.onnx, dynamo): every node of the exporter's raw graph carries ``pkg.torch.onnx.name_scopes`` in its
  metadata; the shipped graph is simplified (onnxsim drops node metadata but keeps value names), so the map is read
  from the node's own metadata where present, else from a fresh raw export of the same deploy model, by value name.
- ExecuTorch (torch.export): ``node.meta["nn_module_stack"]``.
"""

from __future__ import annotations

import ast
import tempfile
from pathlib import Path
from typing import Any

import torch

CHANNEL_LAST_WRAPPER = "ChannelLastIOWrapper"  # litert_torch's NHWC wrapper: its child ``wrapped`` is the model


def tflite_scopes(name: str) -> list[str]:
    """Module paths in a TFLite tensor name written by litert_torch, outermost op first ([] for a constant)."""
    scopes = []
    for part in name.split(";"):
        segments = part.split("/")
        if len(segments) < 2:  # "arith.constant", a bare ";1" counter, an input's name
            continue
        classes = [seg.rsplit(".", 1)[-1] for seg in segments]
        attrs = [cls.split("_", 1)[1] for cls in classes[1:] if "_" in cls]
        if classes[0].startswith(CHANNEL_LAST_WRAPPER) and attrs:
            attrs = attrs[1:]
        scopes.append(".".join(attrs))
    return scopes


def tflite_module(name: str) -> str:
    """The module whose output a TFLite tensor is (``""``: the model itself, or unknown)."""
    scopes = tflite_scopes(name)
    return scopes[0] if scopes else ""


def onnx_node_scope(node: Any) -> str | None:
    """The module path a torch.onnx node records in its metadata, or None when it records none."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            return scopes[-2] if len(scopes) >= 2 else ""  # the last entry is the op itself
    return None


def onnx_value_modules(graph: Any, model: torch.nn.Module | None = None, example: torch.Tensor | None = None) -> dict:
    """Value name -> module path of the node that writes it, for an ONNX ``ModelProto``.

    Nodes without metadata (a simplified graph) are looked up by value name in a fresh raw export of ``model``
    (the deploy form the graph was exported from) on ``example``."""
    found: dict[str, str] = {}
    missing = False
    for node in graph.graph.node:
        scope = onnx_node_scope(node)
        if scope is None:
            missing = True
            continue
        for value in node.output:
            found[value] = scope
    if missing and model is not None and example is not None:
        raw = raw_onnx_scopes(model, example)
        for node in graph.graph.node:
            for value in node.output:
                if value not in found and value in raw:
                    found[value] = raw[value]
    return found


def raw_onnx_scopes(model: torch.nn.Module, example: torch.Tensor) -> dict[str, str]:
    """Value name -> module path in torch.onnx's own (unsimplified) export of ``model``."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=4096)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.onnx"
        program = torch.onnx.export(
            model.eval(),
            (example,),
            dynamo=True,
            external_data=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        program.save(str(path))
        graph = onnx.load(str(path))
    return onnx_value_modules(graph)


def fx_module(node: Any) -> str:
    """The innermost module path of a torch.export / edge-dialect node (``""``: the model itself)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return fx_path(path)


def fx_path(path: str) -> str:
    """``L__self___stage2_0`` / ``stage2.0`` style paths, as ``named_modules`` spells them."""
    return path.removeprefix("L__self__").lstrip("._")
