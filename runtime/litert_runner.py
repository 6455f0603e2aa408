"""The LiteRT runner: a ``.tflite`` file through LiteRT's ``CompiledModel`` API, or its ``Interpreter``.

LiteRT 2.x makes ``CompiledModel`` its standard API (what the Android app runs); ai-edge-litert 2.3.0 has it in
Python as ``ai_edge_litert.compiled_model``. It is used by default, with the same XNNPACK CPU kernels, threads
set through ``CpuOptions(num_threads=...)``: measured here, its outputs equal the Interpreter's bit for bit.
Its Python API gives no quantization parameters of a tensor, so a file with quantized inputs or outputs (int8
files exported before export/quantize_tflite.py gave them float input and output) runs in the ``Interpreter``, which
gives them; so does a file ``CompiledModel`` refuses to open, and any file when ai-edge-litert lacks the API
(tflite-runtime). Today's static int8 files run in ``CompiledModel``: measured at 224 px, batch 1, one thread (AMD
EPYC, AVX-512 VNNI), int8 takes 0.68x the time of fp32 for ShuffleNetV2 x0.5 and 0.29x for ResNet-18.
``runner.api`` says which ran (``deepsquare bench`` records it).

A float graph takes normalized float NHWC; a ``--input uint8`` graph takes the pixels, uint8 ``[1, H, W, 3]``.
Batches run one image at a time (the file has a batch-1 input). No torch here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import quiet
from .bundle import BundleMeta
from .pixels import PixelInput, RuntimeUnavailable

COMPILED_MODEL = "CompiledModel"
INTERPRETER = "Interpreter"
PLAIN_DTYPES = ("float32", "uint8")  # tensors CompiledModel can feed and read without quantization parameters


def _tflite_interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError as exc:
        raise RuntimeUnavailable(
            "no TFLite interpreter: pip install 'deepsquare[tflite]' (ai-edge-litert) or tflite-runtime"
        ) from exc


def quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the tensor's integer type (full-integer int8 models), else unchanged."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    if not scale:  # an integer input without quantization: pixels (--input uint8), fed as they are
        return values.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32).copy()
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


_ENVIRONMENT: list[Any] = []  # one LiteRT Environment for the process, made by the first CompiledModel


def _environment(cm: Any) -> Any:
    """The process's LiteRT environment (made under the caller's ``quiet``: its C++ side logs each accelerator)."""
    if not _ENVIRONMENT:
        runtime_path = os.path.dirname(os.path.abspath(cm.__file__))
        _ENVIRONMENT.append(cm.Environment.create(options=cm.EnvironmentOptions(runtime_path=runtime_path)))
        atexit.register(_quiet_exit)
    return _ENVIRONMENT[0]


def _quiet_exit() -> None:
    """At exit, after Python's own output: LiteRT's C++ statics log "DestroyAccelerator" lines to stderr as they are
    destroyed, after every Python hook. Under the ``deepsquare`` command (``quiet.SILENCE_NATIVE_EXIT``) the process's
    last stderr lines go to /dev/null instead; a library caller's stderr is left alone."""
    if quiet.SILENCE_NATIVE_EXIT:
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    _ENVIRONMENT.clear()


def _compiled_model(path: str | Path, threads: int):
    """The file as a CompiledModel on the CPU, or None when the API is missing, refuses the file, or its
    inputs/outputs are quantized (the Interpreter then runs it)."""
    try:
        from ai_edge_litert import compiled_model as cm
    except ImportError:
        return None
    try:
        options = cm.Options(hardware_accelerators=cm.HardwareAccelerator.CPU, cpu_options=cm.CpuOptions(threads))
        model = cm.CompiledModel.from_file(str(path), environment=_environment(cm), options=options)
        signature = next(iter(model.get_signature_list()))
        inputs = list(model.get_input_tensor_details(signature).values())
        outputs = list(model.get_output_tensor_details(signature).values())
    except Exception:  # a file it cannot compile: the Interpreter opens it, or says why not
        return None
    if len(inputs) != 1 or len(outputs) != 1 or outputs[0]["dtype"] != "float32":
        return None
    if inputs[0]["dtype"] not in PLAIN_DTYPES:
        return None
    return model, inputs[0], outputs[0]


class LiteRTRunner(PixelInput):
    """A ``.tflite`` file with a batch-1 NHWC input; ``api``: ``"auto"`` (CompiledModel where it can run the file),
    ``"CompiledModel"`` or ``"Interpreter"``."""

    name = "litert"

    def __init__(self, path: str | Path, threads: int = 0, meta: BundleMeta | None = None, api: str = "auto") -> None:
        self.meta = meta
        start = time.perf_counter()
        compiled = _compiled_model(path, threads) if api in ("auto", COMPILED_MODEL) else None
        if compiled is None and api == COMPILED_MODEL:
            raise RuntimeUnavailable(f"LiteRT's CompiledModel cannot run {Path(path).name} here")
        if compiled is not None:
            self.api = COMPILED_MODEL
            self.model, detail, out = compiled
            self._inputs, self._outputs = self.model.create_input_buffers(0), self.model.create_output_buffers(0)
            self._out_size = int(np.prod(out["shape"]))
            shape, dtype = list(detail["shape"]), np.dtype(detail["dtype"])
        else:
            self.api = INTERPRETER
            self.interpreter = _tflite_interpreter_class()(model_path=str(path), num_threads=threads or None)
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            shape, dtype = list(self.input["shape"]), np.dtype(self.input["dtype"])
            if dtype == np.uint8 and self.input["quantization"][0]:
                dtype = np.dtype(np.int8)  # a quantized uint8 tensor takes numbers, not pixels
        self.init_s = time.perf_counter() - start
        if self.api == COMPILED_MODEL:  # its first run sets LiteRT up, and logs: here, under the opener's quiet
            self._invoke(np.zeros(shape, dtype))
        self.input_dtype = "uint8" if dtype == np.uint8 else "float32"
        self.input_hw = (int(shape[1]), int(shape[2])) if len(shape) == 4 else None  # [1, H, W, 3]

    def _invoke(self, image: np.ndarray) -> np.ndarray:
        """One image, ``[1, H, W, 3]`` in the file's input type (float or pixels) -> its outputs."""
        if self.api == COMPILED_MODEL:
            self._inputs[0].write(np.ascontiguousarray(image))
            self.model.run_by_index(0, self._inputs, self._outputs)
            return self._outputs[0].read(self._out_size, np.float32)
        self.interpreter.set_tensor(self.input["index"], quantize(image, self.input))
        self.interpreter.invoke()
        return dequantize(self.interpreter.get_tensor(self.output["index"])[0], self.output)

    def _run_float(self, batch_nchw: np.ndarray) -> np.ndarray:
        images = np.asarray(batch_nchw, dtype=np.float32).transpose(0, 2, 3, 1)
        return np.stack([self._invoke(np.ascontiguousarray(image[None])) for image in images])

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        return np.stack([self._invoke(np.ascontiguousarray(image[None])) for image in pixels])
