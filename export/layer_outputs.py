"""Every module's output: in the PyTorch deploy model (forward hooks) and in an exported file's runtime, each runtime
tensor tagged with the module that wrote it (``deepsquare.export.module_scopes``).

- ONNX: a copy of the graph with every intermediate value made a graph output, run in ONNX Runtime.
- TFLite: LiteRT's interpreter with ``experimental_preserve_all_tensors`` and without the XNNPACK delegate (a
  delegated partition keeps no intermediate tensor); the graph's ops run in LiteRT's reference kernels, so a fault of
  the graph shows, a fault of XNNPACK's kernels does not.
- ExecuTorch: not read (see ``EXECUTORCH_NOTE``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepsquare.runtime.runners import dequantize, quantize

from .module_scopes import onnx_value_modules, tflite_scopes

EXECUTORCH_NOTE = (
    "not compared: ExecuTorch's devtools (ETDump with a debug buffer, the Inspector's calculate_numeric_gap) record "
    "intermediate outputs of the ops outside delegates only and treat every delegate call as one operator (its "
    "numerical debugging tutorial says so); a graph lowered whole to XNNPACK has no intermediate tensor to read"
)


MODEL_OUTPUT = "<output>"  # the converter names the graph's output tensor after the signature, not its module


@dataclass
class Tagged:
    """A runtime tensor (NCHW for 4-D values, batch first) and the modules its op came from (outermost first)."""

    name: str
    modules: list[str]
    value: np.ndarray
    layouts: list[np.ndarray] = field(default_factory=list)  # the same tensor in each layout it may be in


def torch_outputs(model: torch.nn.Module, images: torch.Tensor) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each module's output, in the order the modules finish; and each module's class name. A module called more
    than once in a forward (a shared activation) has no single output and is left out."""
    outputs: dict[str, np.ndarray] = {}
    calls: dict[str, int] = {}
    kinds: dict[str, str] = {}
    hooks = []

    def hook(name: str):
        def store(module: torch.nn.Module, args: object, output: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):  # cloned now: an in-place ReLU would change it later
                outputs[name] = output.detach().clone().numpy()

        return store

    for name, module in model.named_modules():
        if name:
            kinds[name] = type(module).__name__
            hooks.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in hooks:
            handle.remove()
    return {k: v for k, v in outputs.items() if calls.get(k) == 1}, kinds


def output_module(reference: dict[str, np.ndarray], logits: np.ndarray) -> str:
    """The first module to finish whose output is the model's output (the innermost one that computes it: the
    module a graph's output tensor is of)."""
    same = [name for name, value in reference.items() if value.shape == logits.shape and np.array_equal(value, logits)]
    return same[0] if same else MODEL_OUTPUT


def onnx_outputs(path: Path, images: np.ndarray, model: torch.nn.Module, example: torch.Tensor) -> list[Tagged]:
    """Every intermediate value of an ONNX file, as ONNX Runtime computes it on a copy with them all as outputs."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(path))
    modules = onnx_value_modules(graph, model, example)
    inferred = onnx.shape_inference.infer_shapes(graph)
    known = {v.name for v in graph.graph.output}
    for value in inferred.graph.value_info:
        if value.name in modules and value.name not in known:
            graph.graph.output.append(value)
            known.add(value.name)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "all_outputs.onnx"
        onnx.save(graph, str(copy))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(copy), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(images)}  # float NCHW, or uint8 pixels
        names = [o.name for o in session.get_outputs()]
        values = dict(zip(names, session.run(None, feed), strict=True))
    order = [v for node in graph.graph.node for v in node.output if v in values]
    return [Tagged(name, [modules.get(name, "")], values[name]) for name in order]


def tflite_outputs(path: Path, images: np.ndarray) -> list[Tagged]:
    """Every tensor an op of a ``.tflite`` file writes, one image at a time (the graph takes batch 1, NHWC)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=str(path),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]
    graph_outputs = {int(o["index"]) for o in interpreter.get_output_details()}
    written = [int(t) for op in interpreter._get_ops_details() for t in op["outputs"] if t >= 0]
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    names = {index: t["name"] for index, t in details.items()}
    batches: dict[int, list[np.ndarray]] = {t: [] for t in written}
    nhwc = images if images.dtype == np.uint8 else images.astype(np.float32).transpose(0, 2, 3, 1)  # uint8: pixels
    for image in nhwc:
        interpreter.set_tensor(source["index"], quantize(image[None], source))  # int8 files: quantized
        interpreter.invoke()
        for tensor in written:
            value = interpreter.get_tensor(tensor)
            scaled = details[tensor]["quantization"][0]  # an int8 activation: its float value, as PyTorch has it
            batches[tensor].append(dequantize(value, details[tensor]) if scaled else np.array(value))
    tagged = []
    for tensor in written:
        value = np.concatenate(batches[tensor]).astype(np.float32)
        layouts = [value.transpose(0, 3, 1, 2), value] if value.ndim == 4 else [value]
        scopes = [MODEL_OUTPUT] if tensor in graph_outputs else tflite_scopes(names.get(tensor, ""))
        tagged.append(Tagged(names.get(tensor, str(tensor)), scopes, value, layouts))
    return tagged


def match(tagged: list[Tagged], module: str, shape: tuple[int, ...]) -> tuple[Tagged, np.ndarray] | None:
    """The runtime tensor that is ``module``'s output: the last one written by an op of that module (or of a module
    inside it) whose shape is the PyTorch output's, in the layout that has that shape. An op fused into another
    (TFLite's conv + activation) belongs to the outer op's module only: its own output does not exist."""
    inside = module + "."
    for item in reversed(tagged):
        owner = item.modules[0] if item.modules else ""
        if owner != module and not owner.startswith(inside):
            continue
        for value in item.layouts or [item.value]:
            if value.shape == shape:
                return item, value
    return None
