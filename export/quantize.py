"""int8 and fp16 weights for the exported graphs: ONNX Runtime's static QDQ quantizer and ai-edge-quantizer's
recipes for TFLite, calibrated on real images (the checkpoint's own training data)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deepsquare.runtime.formats import FORMATS

from .needs import need


def quantize_onnx_int8(graph: Any, calibration_nchw: Tensor) -> Any:
    """Static int8 in QDQ form (onnxruntime.quantization): int8 per-channel weights, uint8 activations whose
    ranges come from the calibration images (the checkpoint's own training data).

    Every convolution and the classifier's weights are int8; the classifier's output (the logits) stays float.
    Measured on trained ShuffleNetV2 x0.5 models (synthetic data, 32 px, 500 held-out images):

    - logits quantized to uint8 (256 levels over their range) were what broke top-1: 88% agreement with
      PyTorch, against 99.0% (gap) and 97.4% (se) with float logits, the classifier's weights int8 either way;
    - the first convolution in int8 cost nothing measurable (99.0% agreement for gap, as with it in float).
      Keeping it in float, as before, made int8 *slower* than fp32 in ONNX Runtime (2.2x at 224 px): ORT moved
      the QuantizeLinear behind it up through the stem's MaxPool, which then ran in ORT's generic uint8 NCHW
      MaxPool (9-25 ms of a 40-70 ms run, against 0.1 ms in float); with the first convolution quantized the
      MaxPool becomes ORT's NHWC uint8 kernel (NhwcMaxPool) between two QLinearConvs.

    The int8 classifier weights make a 1000-class ShuffleNetV2 x0.5 file about 3x smaller than with a float one.
    """
    import onnx
    from onnxruntime import quantization as q

    class Images(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{FORMATS["onnx"].input_name: image[None].numpy()} for image in calibration_nchw])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(graph, str(source))
        # --input uint8: the prologue before the first convolution (Cast, Mul, Add, Transpose) stays in float.
        first = next(i for i, n in enumerate(graph.graph.node) if n.op_type == "Conv")
        prologue = [n.name for n in graph.graph.node[:first]]
        q.quantize_static(
            str(source),
            str(target),
            Images(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
            nodes_to_exclude=prologue,
            extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm", "MatMul"]},  # float logits
        )
        return onnx.load(str(target))


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


def quantize_int8(float_path: Path, calibration_nchw: Tensor) -> bytes:
    """Static int8 weights and activations (ai-edge-quantizer), calibrated on real inputs; int8 input/output."""
    aeq = need("ai_edge_quantizer", "tflite")
    quantizer = aeq.quantizer.Quantizer(str(float_path), aeq.recipe.static_wi8_ai8())
    # The classifier computes in float (a negligible share of the MACs): measured on a trained ShuffleNetV2 x0.5,
    # top-1 agreement with fp32 rose from 91% to 93% and held-out accuracy from -1.6 to +0.0 points. Its weights
    # are int8 (channelwise, dequantized by an explicit op that CPU delegates fold at load: the speed of a float
    # classifier): on the demo's ShuffleNetV2 x0.5 (500 held-out images) agreement 84.2% vs 84.6% with float
    # weights (two images), and most of a 1000-class model's weights are the classifier's.
    qtyping = aeq.qtyping
    int8_weights = qtyping.OpQuantizationConfig(
        weight_tensor_config=qtyping.TensorQuantizationConfig(
            num_bits=8, symmetric=True, granularity=qtyping.QuantGranularity.CHANNELWISE
        ),
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )
    quantizer.update_quantization_recipe(
        regex=".*",
        operation_name="FULLY_CONNECTED",
        algorithm_key="min_max_uniform_quantize",
        op_config=int8_weights,
    )
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(model_path=str(float_path)).get_signature_list()
    signature = next(iter(signatures))
    arg = signatures[signature]["inputs"][0]
    # uint8 pixels (--input uint8) are NHWC already; normalized float images are NCHW.
    nhwc = calibration_nchw if calibration_nchw.dtype == torch.uint8 else calibration_nchw.permute(0, 2, 3, 1)
    samples = [{arg: image[None].contiguous().numpy()} for image in nhwc]
    result = quantizer.calibrate({signature: samples})
    return bytes(quantizer.quantize(result).quantized_model)
