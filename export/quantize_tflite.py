"""int8 and fp16 TFLite files (ai-edge-quantizer recipes), calibrated on real images (the checkpoint's own data).

The keep-float contract: a module path in ``keep_float`` computes in float, with everything under it. The
quantizer's recipe picks an op by a regex on its *scope*: its output tensor names joined by ``;`` (plus a trailing
``;``), which litert_torch writes as the module scopes of the ops it fused (``export/module_scopes.py``). The ops
under a kept path get one entry, their exact scopes escaped and anchored (:func:`exact`), with no quantization: the
quantizer then dequantizes their inputs and quantizes their outputs at the boundary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .int8_units import under_any
from .module_scopes import tflite_scopes
from .needs import need

NO_QUANTIZE = "no_quantize"
MIN_MAX = "min_max_uniform_quantize"
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def cast_weights_fp16(float_path: Path) -> bytes:
    """float16 weights for the conv and FC layers (ai-edge-quantizer's float casting): half the file; each weight
    gets a DEQUANTIZE op, which CPU delegates fold into float32 weights at load and GPU delegates run in fp16."""
    aeq = need("ai_edge_quantizer", "tflite")
    qtyping = aeq.qtyping
    half = qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT)
    config = qtyping.OpQuantizationConfig(
        weight_tensor_config=half, compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True
    )
    quantizer = aeq.quantizer.Quantizer(str(float_path))
    quantizer.update_quantization_recipe(
        regex=".*", operation_name="*", algorithm_key="float_casting", op_config=config
    )
    return bytes(quantizer.quantize().quantized_model)


def op_scopes(float_path: Path) -> list[tuple[str, str, list[str], bool]]:
    """(op name, the quantizer's scope string, module paths, whether it is a convolution with few output channels)
    for every op of the file's main graph, in order."""
    aeq = need("ai_edge_quantizer", "tflite")
    fb = aeq.utils.tfl_flatbuffer_utils
    model = fb.read_model(str(float_path))
    subgraph = model.subgraphs[0]
    found = []
    for op in subgraph.operators:
        code = model.operatorCodes[op.opcodeIndex].builtinCode
        scope = fb.get_op_scope(op, subgraph.tensors)
        modules = _modules(fb, subgraph, op.outputs)
        if not modules:  # an op writing a graph output ("serving_default_output_0"): its weights name the module
            modules = _modules(fb, subgraph, op.inputs[1:])
        found.append((fb.TFL_OP_CODE_TO_NAME.get(code, str(code)), scope, modules, _narrow(fb, subgraph, op)))
    return found


NARROW = 4  # output channels below which XNNPACK could not build an int8 convolution (measured: 1 and 3 failed, 6 ran)


def _narrow(fb: Any, subgraph: Any, op: Any) -> bool:
    """Whether the op is a convolution with fewer than ``NARROW`` output channels (weights ``[N, kh, kw, C]``)."""
    if len(op.inputs) < 2 or op.inputs[1] == -1:
        return False
    weights = subgraph.tensors[op.inputs[1]]
    return weights.shape is not None and len(weights.shape) == 4 and int(weights.shape[0]) < NARROW


def _modules(fb: Any, subgraph: Any, tensors: Sequence[int]) -> list[str]:
    names = [fb.get_tensor_name(subgraph.tensors[i]) for i in tensors if i != -1]
    return [module for name in names for module in tflite_scopes(name)]


def kept_scopes(float_path: Path, keep_float: Sequence[str]) -> list[str]:
    """The quantizer scopes of the ops that compute a kept module: an op fused from several modules (a convolution
    and its activation) names the activation first and the convolution last; in between, and last on other ops,
    litert_torch may name an unrelated module a shared constant came from. The op is kept when its first module lies
    under a kept path, or, for an op with weights, its last."""
    if not keep_float:
        return []
    kept = []
    for name, scope, modules, _ in op_scopes(float_path):
        ends = modules[:1] + (modules[-1:] if name in WEIGHTED else [])
        if any(under_any(module, tuple(keep_float)) for module in ends):
            kept.append(scope)
    return kept


def exact(scopes: Sequence[str]) -> str | None:
    """One regex matching exactly these scopes (None for none): one recipe entry, not one per op. Python's ``re``
    caches 512 compiled patterns, and the quantizer searches every entry for every op at every calibration step: a
    few hundred long patterns of their own recompiled at each search (minutes for a ShuffleNetV2)."""
    if not scopes:
        return None
    return "^(?:" + "|".join(re.escape(scope) for scope in dict.fromkeys(scopes)) + ")$"


def refused_by_xnnpack(float_path: Path) -> list[str]:
    """Scopes of the ops LiteRT cannot run in int8 here, kept float whatever ``keep_float`` says:

    - a CONV_2D with fewer than 4 output channels: XNNPACK failed to build its runtime for the file ("failed to
      create XNNPACK runtime", or a double free) - the SE squeezes of ShuffleNetV2 x0.5's 24- and 48-channel blocks
      (24 // 16 = 1 and 48 // 16 = 3 channels; the 96-channel blocks' 6 ran);
    - DIV (Square-Excitation's normalization): LiteRT's int8 DIV refuses a divisor that quantizes to zero
      ("div.cc: data[i] != zero_point"), and XNNPACK has no int8 division.
    """
    return [
        scope for name, scope, _, narrow in op_scopes(float_path) if (narrow and name == "CONV_2D") or name == "DIV"
    ]


def quantize_int8(float_path: Path, calibration: Tensor, keep_float: Sequence[str] = ()) -> bytes:
    """Static int8 (ai-edge-quantizer), calibrated on real inputs: int8 per-channel weights, int8 activations whose
    ranges are the extremes over the calibration images (:func:`calibrate_min_max`); float input and output.

    ``keep_float``: module paths of the converted model whose ops compute in float (the keep-float contract), with
    the ops LiteRT cannot run in int8 (:func:`refused_by_xnnpack`). The classifier computes in float from int8
    weights (a DEQUANTIZE that CPU delegates fold at load), so the logits are float. Measured on digits-trained
    ShuffleNetV2 x0.5 (364 held-out images), top-1 agreement with PyTorch: ``gem`` 98.9% -> 99.7% with the min-max
    ranges; ``ss`` 98.6% with them and the Square-Softmin (-x^2 of the logits) in int8, 99.5% with it in float
    (``DEFAULT_KEEP_FLOAT``); the int8 input and output of the earlier export made no measured difference, but only
    float ones let LiteRT's ``CompiledModel`` run the file.
    """
    aeq = need("ai_edge_quantizer", "tflite")
    qtyping = aeq.qtyping
    quantizer = aeq.quantizer.Quantizer(str(float_path), aeq.recipe.static_wi8_ai8())
    int8_weights = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE
        ),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )
    float_op = qtyping.OpQuantizationConfig()
    quantizer.update_quantization_recipe(
        regex=".*", operation_name="FULLY_CONNECTED", algorithm_key=MIN_MAX, op_config=int8_weights
    )
    for io in ("INPUT", "OUTPUT"):  # float in and out: the QUANTIZE and DEQUANTIZE inside the file
        quantizer.update_quantization_recipe(
            regex=".*", operation_name=io, algorithm_key=NO_QUANTIZE, op_config=float_op
        )
    regex = exact(kept_scopes(float_path, keep_float) + refused_by_xnnpack(float_path))
    if regex is not None:
        quantizer.update_quantization_recipe(
            regex=regex, operation_name="*", algorithm_key=NO_QUANTIZE, op_config=float_op
        )
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(float_path)).get_signature_list()
    signature = next(iter(signatures))
    arg = signatures[signature]["inputs"][0]
    # uint8 pixels (--input uint8) are NHWC already; normalized float images are NCHW.
    nhwc = calibration if calibration.dtype == torch.uint8 else calibration.permute(0, 2, 3, 1)
    samples = [{arg: image[None].contiguous().numpy()} for image in nhwc]
    result = calibrate_min_max(aeq, float_path, quantizer, {signature: samples})
    return bytes(quantizer.quantize(result).quantized_model)


def calibrate_min_max(aeq: Any, float_path: Path, quantizer: Any, data: dict[str, list]) -> dict[str, Any]:
    """Each tensor's range: its minimum and maximum over all the calibration images.

    ``Quantizer.calibrate`` keeps, per tensor, a moving average (weight 0.95) of each image's own min and max: fed one
    image at a time (the file takes batch 1), its ranges follow the last twenty images and clip what the others
    reach. ONNX Runtime's MinMax calibration takes the extremes over all images, as here."""
    calibrator = aeq.calibrator.Calibrator(
        str(float_path), num_threads=1, qsv_update_func=aeq.utils.qsv_utils.min_max_update
    )
    calibrator.calibrate(data, quantizer._recipe_manager)  # the recipe says which tensors need ranges
    return calibrator.get_model_qsvs()
