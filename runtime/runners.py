"""One small interface over ONNX Runtime, LiteRT/TFLite and Core ML.

Every runner takes normalized NCHW float32 batches (what the PyTorch model takes) and
returns float32 logits ``(N, num_classes)``; a runner whose model wants another layout
converts inside. No torch here.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from .bundle import BundleError, BundleMeta, check_model_file, load_bundle
from .formats import FORMATS, Format
from .quiet import quiet


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (not installed, or needs another OS)."""


class Runner(Protocol):
    name: str
    init_s: float

    def run(self, batch_nchw: np.ndarray) -> np.ndarray: ...


class OnnxRunner:
    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise RuntimeUnavailable("onnxruntime is not installed: pip install 'deepsquare[onnx]'") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Idle intra-op threads would otherwise spin-wait for work: with several sessions timed in turn
        # (deepsquare bench) a spinning session slowed the next one by up to 1.4x at 2 threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        start = time.perf_counter()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.init_s = time.perf_counter() - start
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape  # ["batch", 3, H, W]
        self.input_hw = tuple(shape[2:4]) if len(shape) == 4 else None

    def run(self, batch_nchw: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch_nchw, dtype=np.float32)})[0]


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


class LiteRTRunner:
    """The TFLite model has a batch-1 NHWC input; batches run one image at a time."""

    name = "litert"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        interpreter_class = _tflite_interpreter_class()
        start = time.perf_counter()
        self.interpreter = interpreter_class(model_path=str(path), num_threads=threads or None)
        self.interpreter.allocate_tensors()
        self.init_s = time.perf_counter() - start
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = list(self.input["shape"])  # [1, H, W, 3]
        self.input_hw = (int(shape[1]), int(shape[2])) if len(shape) == 4 else None

    def run(self, batch_nchw: np.ndarray) -> np.ndarray:
        outputs = []
        for image in np.asarray(batch_nchw, dtype=np.float32).transpose(0, 2, 3, 1):
            self.interpreter.set_tensor(self.input["index"], quantize(image[None], self.input))
            self.interpreter.invoke()
            outputs.append(dequantize(self.interpreter.get_tensor(self.output["index"])[0], self.output))
        return np.stack(outputs)


def quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the tensor's integer type (full-integer int8 models), else unchanged."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.rint(values / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32).copy()
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


class ExecuTorchRunner:
    """ExecuTorch's Python runtime over a ``.pte`` (XNNPACK-lowered, batch-1 NCHW input).

    The one runner that needs torch at run time: ExecuTorch's Python bindings take and return
    torch tensors. torch is imported here, when the runner is created, never when
    ``deepsquare.runtime`` is imported; on a phone the same ``.pte`` runs in ExecuTorch's C++
    runtime without torch.
    """

    name = "executorch"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            import torch
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime
        except ImportError as exc:
            raise RuntimeUnavailable("executorch is not installed: pip install 'deepsquare[executorch]'") from exc
        self._torch = torch
        if threads:
            # The XNNPACK thread pool is process-wide in ExecuTorch's Python bindings.
            portable_lib._unsafe_reset_threadpool(threads)
        start = time.perf_counter()
        self.program = Runtime.get().load_program(Path(path))
        self.method = self.program.load_method("forward")
        self.init_s = time.perf_counter() - start
        sizes = list(self.method.metadata.input_tensor_meta(0).sizes())  # [1, 3, H, W]
        self.input_hw = (int(sizes[2]), int(sizes[3])) if len(sizes) == 4 else None

    def run(self, batch_nchw: np.ndarray) -> np.ndarray:
        outputs = []
        for image in np.asarray(batch_nchw, dtype=np.float32):
            x = self._torch.from_numpy(np.ascontiguousarray(image[None]))
            outputs.append(self.method.execute([x])[0].numpy()[0].copy())
        return np.stack(outputs)


class CoreMLRunner:
    """Core ML prediction exists on macOS only; elsewhere this refuses plainly.

    The exported model is a classifier (``ClassifierConfig``): ``predict`` returns the top label
    under ``classLabel`` and a ``{label: probability}`` dictionary under the probabilities output
    (``classLabel_probs``), never logits. So this runner returns probabilities, ordered by the
    bundle's class list, and the parity gate compares them with the softmax of the reference.
    """

    name = "coreml"
    outputs = "probabilities"

    def __init__(self, path: str | Path, meta: BundleMeta, compute_units: str = "ALL") -> None:
        if platform.system() != "Darwin":
            raise RuntimeUnavailable(f"Core ML prediction needs macOS; this is {platform.system()}")
        import coremltools as ct

        start = time.perf_counter()
        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
        self.init_s = time.perf_counter() - start
        self.meta = meta
        self.probabilities = self.model.get_spec().description.predictedProbabilitiesName or "classLabel_probs"

    def run(self, batch_nchw: np.ndarray) -> np.ndarray:
        from PIL import Image

        # The Core ML model takes the raw image and normalizes inside: undo ours first.
        mean = np.asarray(self.meta.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.meta.std, dtype=np.float32)[:, None, None]
        outputs = []
        for chw in batch_nchw:
            pixels = np.clip(np.rint((chw * std + mean) * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)
            result = self.model.predict({"image": Image.fromarray(pixels)})
            probs = result[self.probabilities]
            missing = [c for c in self.meta.classes if c not in probs]
            if missing:
                raise RuntimeError(f"Core ML returned no probability for class(es) {missing[:3]}")
            outputs.append(np.asarray([probs[c] for c in self.meta.classes], dtype=np.float32))
        return np.stack(outputs)


# The runner class of each format, by its runtime name (the format table's ``runtime``).
RUNNERS: dict[str, Callable[[Path, BundleMeta | None, int], Runner]] = {
    "onnxruntime": lambda path, meta, threads: OnnxRunner(path, threads),
    "coreml": lambda path, meta, threads: CoreMLRunner(path, meta),
    "litert": lambda path, meta, threads: LiteRTRunner(path, threads),
    "executorch": lambda path, meta, threads: ExecuTorchRunner(path, threads),
}


def open_model(fmt: Format, path: Path, meta: BundleMeta | None, threads: int) -> Runner:
    """Open one model file of format ``fmt`` in its runtime (no checks: see ``open_model_file``)."""
    return RUNNERS[fmt.runtime](path, meta, threads)


def open_runner(bundle_dir: str | Path, fmt: str, threads: int = 0) -> tuple[Runner, BundleMeta]:
    """The runner of one format of a bundle, chosen by the format table."""
    folder, meta = load_bundle(bundle_dir)
    if fmt not in meta.formats:
        have = ", ".join(meta.formats) or "none"
        raise BundleError(f"bundle {folder} has no {fmt} model (it has: {have})")
    if fmt not in FORMATS:
        raise BundleError(f"bundle {folder} lists a {fmt!r} model, a format this deepsquare does not know")
    path = folder / meta.formats[fmt].file
    if not path.exists():
        raise BundleError(f"bundle {folder} lists {path.name}, which is missing")
    check_model_file(path, meta)  # the bytes model.json was exported with, not another model's file
    runner = open_model_file(FORMATS[fmt], path, meta, threads)
    return runner, meta


def open_model_file(fmt: Format, path: Path, meta: BundleMeta, threads: int) -> Runner:
    """Open one model file; a damaged file or one that disagrees with model.json is a one-line BundleError."""
    try:
        with quiet():  # runtimes announce their delegates and CPU features from C++
            runner = open_model(fmt, path, meta, threads)
    except RuntimeUnavailable:
        raise
    except Exception as exc:  # each runtime has its own exception types for a file it cannot load
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"cannot load {path} (damaged or not a {path.suffix} model?): {first[:200]}") from exc
    hw = getattr(runner, "input_hw", None)
    if hw and all(isinstance(v, int) for v in hw) and hw != (meta.input_size, meta.input_size):
        raise BundleError(
            f"{path.name} takes {hw[0]}x{hw[1]} images but model.json says {meta.input_size}; "
            "the bundle is inconsistent: re-export it"
        )
    return runner


def top_k(scores: np.ndarray, classes: list[str], k: int = 5, probabilities: bool = False) -> list[tuple[str, float]]:
    """Labels and probabilities of the k largest scores of one image (softmax of logits, unless the
    runner already returns probabilities, as Core ML's classifier does)."""
    if probabilities:
        probs = np.asarray(scores, dtype=np.float64)
    else:
        shifted = np.exp(scores - scores.max())
        probs = shifted / shifted.sum()
    order = np.argsort(-scores, kind="stable")[:k]
    return [(classes[i], float(probs[i])) for i in order]
