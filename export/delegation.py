"""Which ops each runtime's accelerator takes: the delegation report of an export (``export_report.json``).

- TFLite: the file opened in LiteRT's interpreter, which applies the XNNPACK delegate by default. The Python API
  lists every node of the primary subgraph, the original ones and one ``DELEGATE`` node per partition (the
  execution plan itself is not exposed). A partition is found back from its delegate node: walking back from the
  delegate's outputs through the nodes that write them, up to the delegate's inputs, visits exactly the nodes it
  replaced (what XNNPACK logs as "Replacing N out of M node(s) ..., yielding K partitions", without parsing a log).
- ExecuTorch: the lowered edge program: ops inside each ``executorch_call_delegate`` (one per partition) against
  the ops left in the program, each with its module from ``nn_module_stack``.
- ONNX Runtime: :mod:`deepsquare.export.delegation_ort`.

``--require-delegated`` turns an op left outside XNNPACK (TFLite, ExecuTorch) into a failed format.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .module_scopes import fx_module, tflite_module

XNNPACK = "XNNPACK"
BOOKKEEPING = ("getitem",)  # ExecuTorch: unpacking a delegate's outputs, not an op that runs
LISTED = 20  # ops left outside named one by one in the report; the rest are counted


def tflite_delegation(path: str | Path) -> dict[str, Any]:
    """XNNPACK's share of a ``.tflite`` file's ops, as LiteRT's interpreter delegates them on this machine."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()  # no public API lists the nodes
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    writer = {int(t): n["index"] for n in ops for t in n["outputs"]}
    inside: set[int] = set()
    for delegate in delegates:
        boundary = {int(t) for t in delegate["inputs"]}
        todo = [int(t) for t in delegate["outputs"]]
        while todo:
            tensor = todo.pop()
            if tensor in boundary or tensor not in writer or writer[tensor] in inside:
                continue
            inside.add(writer[tensor])
            todo.extend(int(t) for t in nodes[writer[tensor]]["inputs"] if t >= 0)
    outside = [
        {"op": n["op_name"], "module": tflite_module(names.get(int(n["outputs"][0]), "")) if len(n["outputs"]) else ""}
        for n in ops
        if n["index"] not in inside
    ]
    return report(XNNPACK, len(ops), len(inside), len(delegates), outside)


def executorch_delegation(lowered: Any) -> dict[str, Any]:
    """XNNPACK's share of a lowered ExecuTorch program (``to_edge_transform_and_lower``'s result)."""
    program = lowered.exported_program()
    inside = partitions = 0
    outside = []
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(getattr(node.target, "__name__", node.target))
        if "executorch_call_delegate" in target:
            partitions += 1
            module = getattr(program.graph_module, node.args[0].target)
            inside += sum(1 for n in module.original_module.graph.nodes if n.op == "call_function")
        elif not any(name in target for name in BOOKKEEPING):
            outside.append({"op": edge_op_name(node.target), "module": fx_module(node)})
    return report(XNNPACK, inside + len(outside), inside, partitions, outside)


def edge_op_name(target: Any) -> str:
    """``aten.index.Tensor`` for an edge-dialect op (its str() carries the whole schema)."""
    text = str(target)
    if text.startswith("<EdgeOpOverload: "):
        return text.removeprefix("<EdgeOpOverload: ").split(">", 1)[0]
    return str(getattr(target, "__name__", text))


def report(delegate: str, ops: int, inside: int, partitions: int, outside: list[dict[str, str]]) -> dict[str, Any]:
    kinds = Counter(o["op"] for o in outside)
    return {
        "delegate": delegate,
        "ops": ops,
        "delegated": inside,
        "partitions": partitions,
        "outside_count": len(outside),
        "outside_by_op": dict(kinds.most_common()),
        "outside": outside[:LISTED],
    }


def not_delegated(delegation: dict[str, Any]) -> str | None:
    """Why ``--require-delegated`` refuses this graph (each op left outside, with its module), or None."""
    if not delegation or "outside_count" not in delegation or not delegation["outside_count"]:
        return None
    modules: dict[str, list[str]] = {}
    for entry in delegation["outside"]:  # the first LISTED ops left outside, each with its module
        modules.setdefault(entry["op"], []).append(entry["module"] or "the model")
    named = []
    for op, count in delegation["outside_by_op"].items():
        listed = list(dict.fromkeys(modules.get(op, [])))[:3]
        more = f" and {count - len(listed)} more" if count > len(listed) else ""
        named.append(f"{op}{f' x{count}' if count > 1 else ''} in {', '.join(listed) or '?'}{more}")
    return (
        f"{delegation['outside_count']} of {delegation['ops']} ops run outside {delegation['delegate']} "
        f"(--require-delegated): {'; '.join(named)}"
    )


def delegation_summary(delegation: dict[str, Any]) -> str:
    """One phrase for the export's summary line."""
    if not delegation:
        return ""
    if "error" in delegation:
        return f"delegation: not measured ({delegation['error']})"
    if "delegated" in delegation:
        text = (
            f"{delegation['delegate']} {delegation['delegated']}/{delegation['ops']} ops in "
            f"{delegation['partitions']} partition{'s' if delegation['partitions'] != 1 else ''}"
        )
        if delegation["outside_count"]:
            kinds = ", ".join(f"{op} x{n}" for op, n in delegation["outside_by_op"].items())
            text += f", outside: {kinds}"
        return text
    from .delegation_ort import ort_summary

    return ort_summary(delegation)
