"""ONNX Runtime's side of the delegation report: where each node of an ``.onnx`` (or ``.ort``) file runs.

- Nodes per execution provider, and the NCHWc layout reorders (``ReorderInput`` / ``ReorderOutput``) its graph
  optimizer inserted, from one profiled run of a session as the runners open it (all optimizations on): the
  profile lists every node of the optimized graph with its provider and op.
- The partitions the mobile execution providers would take (NNAPI, Core ML NeuralNetwork and MLProgram), from ONNX
  Runtime's own mobile usability checker (``onnxruntime.tools.mobile_helpers.usability_checker``, its functions
  called here, on the graph optimized to the BASIC level as the checker's command does): as the file is, and, for a
  graph with a dynamic dimension, as it would be with fixed shapes.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REORDERS = ("ReorderInput", "ReorderOutput")
MOBILE_EPS = {  # the checker's name of each mobile EP -> its supported-ops list (None: NNAPI's own function)
    "NNAPI": None,
    "CoreML NeuralNetwork": "coreml_supported_neuralnetwork_ops.md",
    "CoreML MLProgram": "coreml_supported_mlprogram_ops.md",
}


def onnxruntime_delegation(path: str | Path, mobile: bool = True) -> dict[str, Any]:
    """Nodes per provider and NCHWc reorders of ``path`` in ONNX Runtime; the mobile EPs' partitions if ``mobile``."""
    record = ort_placement(Path(path))
    if mobile:
        record["mobile"] = mobile_partitions(Path(path))
    return record


def example_feed(session: Any) -> dict[str, np.ndarray]:
    """One batch-1 input of the right type for each of the session's inputs (dynamic dimensions set to 1)."""
    feed = {}
    for value in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        dtype = np.uint8 if "uint8" in value.type else np.int8 if "int8" in value.type else np.float32
        feed[value.name] = np.zeros(shape, dtype=dtype)
    return feed


def ort_placement(path: Path) -> dict[str, Any]:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "placement")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, example_feed(session))
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, tuple[str, str]] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") == "Node" and "provider" in args:
            name = event["name"].removesuffix("_kernel_time").removesuffix("_fence_before").removesuffix("_fence_after")
            nodes[name] = (args["provider"], args.get("op_name", "?"))
    providers = Counter(provider for provider, _ in nodes.values())
    ops = Counter(op for _, op in nodes.values())
    return {
        "runtime": "onnxruntime",
        "nodes_optimized": len(nodes),
        "providers": dict(providers.most_common()),
        "nchwc_reorders": {op: ops.get(op, 0) for op in REORDERS},
    }


def mobile_partitions(path: Path) -> dict[str, Any]:
    """Each mobile EP's partitions by ONNX Runtime's checker: ``as_is`` and, if a dimension is dynamic, ``fixed``."""
    from onnxruntime.tools.mobile_helpers import usability_checker as checker
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    with tempfile.TemporaryDirectory() as tmp:
        optimized = pathlib.Path(tmp) / "basic.onnx"
        if path.suffix == ".onnx":
            optimize_model(path, optimized)
        else:  # an .ort file: the checker reads ONNX only
            return {"note": "the checker reads .onnx files only; see the onnx format's record"}
        model = ModelProtoWithShapeInfo(optimized).model_with_shape_info
    dynamic, _ = checker.check_shapes(model.graph)
    found: dict[str, Any] = {"dynamic_inputs": [value.name for value in dynamic]}
    for ep, ops_file in MOBILE_EPS.items():

        def check(fixed_only: bool, ops_file: str | None = ops_file) -> Any:
            if ops_file is None:
                return checker.check_nnapi_partitions(model, fixed_only)
            return checker.check_coreml_partitions(model, fixed_only, ops_file)

        found[ep] = {"as_is": partition_record(check(True))}
        if dynamic:
            found[ep]["fixed"] = partition_record(check(False))
    return found


def partition_record(info: Any) -> dict[str, Any]:
    return {
        "nodes": info.num_nodes,
        "supported": info.num_supported_nodes,
        "partitions": info.num_partitions,
        "partition_sizes": [len(group) for group in info.supported_groups],
        "unsupported_ops": sorted(info.unsupported_ops),
        "unsupported_for_dynamic_shape": info.nodes_unsupported_due_to_dynamic_input,
        "suitability": info.suitability().name,
    }


def ort_summary(record: dict[str, Any]) -> str:
    """One phrase for the export's summary line."""
    providers = ", ".join(f"{n} {p.removesuffix('ExecutionProvider')}" for p, n in record["providers"].items())
    reorders = record["nchwc_reorders"]
    text = f"{record['nodes_optimized']} nodes ({providers}), NCHWc reorders {sum(reorders.values())}"
    mobile = record.get("mobile") or {}
    parts = []
    for ep in MOBILE_EPS:
        if ep in mobile:
            best = mobile[ep].get("fixed", mobile[ep]["as_is"])
            shipped = mobile[ep]["as_is"]
            fixed = f" ({best['partitions']} with fixed shapes)" if "fixed" in mobile[ep] else ""
            parts.append(f"{ep} {shipped['partitions']}{fixed}")
    if parts:
        text += "; mobile EP partitions: " + ", ".join(parts)
    return text
