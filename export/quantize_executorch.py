"""Static int8 for ExecuTorch: PT2E quantization with ExecuTorch's ``XNNPACKQuantizer``, lowered to XNNPACK.

torch.export's graph is annotated by the quantizer (int8 activations, symmetric per-channel int8 weights, the
quantizer's XNNPACK static config), calibrated on real images, converted to quantize/dequantize pairs and then
lowered with ``XnnpackPartitioner`` like the fp32 path: XNNPACK folds each ``dq -> conv -> q`` into one int8
convolution. The file still takes and returns float32 (or ``uint8`` pixels with ``--input uint8``); the pixel
prologue (``deepsquare.export.prologue.PixelPrologue``) stays float, and so do the logits (the ORT finding of
``deepsquare.export.quantize``: quantized logits broke top-1 agreement). The classifier (the last ``nn.Linear``)
gets the quantizer's *dynamic* config: int8 weights, its input quantized at run time, float output, which XNNPACK
runs as one int8 fully-connected op. With the static config and a float output the classifier's weight dequantize
stayed outside XNNPACK, and ExecuTorch's portable runtime has no kernel for it ("Missing out variants:
dequantize_per_channel").

The keep-float contract: every module path in ``keep_float`` (paths of the model given, relative to
``PixelPrologue.model`` when it is wrapped) and everything under it is left out of the annotation, so it runs in
float and the quantizer puts (de)quantize nodes at its boundary. ``XNNPACKQuantizer.set_module_name(path, None)``
asserts a config (executorch 1.5), so the kept paths go through its filter function, which every config obeys.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from .int8_units import under_any
from .prologue import PixelPrologue

QUANTIZED_TARGETS = ("conv1d", "conv2d", "convolution", "linear")  # ops whose int8-ness is reported
DEQUANTIZE = "dequantize_per"  # quantized_decomposed.dequantize_per_tensor / _per_channel


def module_paths(model: nn.Module, keep_float: Iterable[str]) -> tuple[tuple[str, ...], str]:
    """The paths the quantizer sees (torch.export's module names) for ``keep_float``, and the prefix of the model's
    own modules: ``model.`` under the pixel prologue, whose own 1x1 convolution stays float as well."""
    if isinstance(model, PixelPrologue):
        prologue = ("pointwise",) if model.pointwise is not None else ()
        return (*prologue, *(f"model.{p}" for p in keep_float)), "model."
    return tuple(keep_float), ""


def node_module(node: torch.fx.Node) -> str:
    """The innermost module path of an exported node (its ``nn_module_stack``), "" at the top."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.removeprefix("L['self'].")


def make_quantizer(kept: tuple[str, ...], classifier: str | None) -> Any:
    """XNNPACKQuantizer with the static symmetric per-channel config, nothing annotated under ``kept``, and float
    outputs for the nodes whose output is the graph's (the logits)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    class FloatLogits(XNNPACKQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            for out in (n for n in model.graph.nodes if n.op == "output"):
                for node in out.all_input_nodes:
                    annotation = node.meta.get("quantization_annotation")
                    if annotation is not None:
                        annotation.output_qspec = None
            return model

    quantizer = FloatLogits()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    if classifier is not None:
        quantizer.set_module_name(classifier, get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    if kept:
        quantizer.set_filter_function(lambda node: not under_any(node_module(node), kept))
    return quantizer


def quantize_program(
    model: nn.Module, example: Tensor, calibration: Tensor | None, keep_float: tuple[str, ...] = ()
) -> tuple[torch.export.ExportedProgram, dict[str, Any]]:
    """The int8 ``ExportedProgram`` of ``model`` (batch 1), calibrated one image at a time on ``calibration``
    (normalized NCHW, or uint8 NHWC pixels for a ``PixelPrologue``), ready for ``to_edge_transform_and_lower``."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = example[:1].contiguous()
    images = calibration if calibration is not None and len(calibration) else example
    kept, prefix = module_paths(model, keep_float)
    inner = model.model if isinstance(model, PixelPrologue) else model
    linears = [name for name, module in inner.named_modules() if isinstance(module, nn.Linear)]
    classifier = prefix + linears[-1] if linears else None
    captured = torch.export.export(model.eval(), (sample,)).module()
    prepared = prepare_pt2e(captured, make_quantizer(kept, classifier))
    with torch.no_grad():
        for image in images:
            prepared(image[None].contiguous())
    converted = convert_pt2e(prepared)
    program = torch.export.export(converted, (sample,))
    info = {"keep_float": list(keep_float), "float_ops": float_ops(program.graph), "calibration_images": len(images)}
    return program, info


def float_ops(graph: torch.fx.Graph) -> int:
    """Convolutions and matrix products left in float: their weight does not come through a dequantize (int8)."""
    count = 0
    for node in graph.nodes:
        name = str(getattr(node.target, "__name__", node.target))
        if node.op != "call_function" or name.split(".")[0] not in QUANTIZED_TARGETS or len(node.args) < 2:
            continue
        weight = node.args[1]
        count += not (isinstance(weight, torch.fx.Node) and weight_is_int8(weight))
    return count


def weight_is_int8(node: torch.fx.Node) -> bool:
    """A dequantize, maybe behind a transpose (``addmm`` takes the classifier's weight transposed)."""
    while node.op == "call_function" and DEQUANTIZE not in str(node.target) and node.all_input_nodes:
        node = node.all_input_nodes[0]
    return DEQUANTIZE in str(node.target)
