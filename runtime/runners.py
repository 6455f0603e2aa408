"""One small interface over ONNX Runtime, LiteRT/TFLite, ExecuTorch and Core ML.

Every runner takes normalized NCHW float32 batches (``run``, what the PyTorch model takes) and uint8 RGB pixels
(``run_pixels``, what a ``--input uint8`` file takes), and returns float32 logits ``(N, num_classes)``; a runner
whose file wants the other input or another layout converts inside (``deepsquare.runtime.pixels``). The file
says which input it takes (``runner.input_dtype``: ``float32``, ``uint8`` or Core ML's ``image``); opening a
bundle's file checks that ``model.json`` says the same. No torch here.
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
from .litert_runner import LiteRTRunner, dequantize, quantize
from .pixels import PixelInput, RuntimeUnavailable
from .quiet import quiet

__all__ = ["LiteRTRunner", "RuntimeUnavailable", "dequantize", "quantize"]  # beside the names defined here


class Runner(Protocol):
    name: str
    init_s: float
    input_dtype: str  # "float32", "uint8" (pixels) or "image" (Core ML)

    def run(self, batch_nchw: np.ndarray) -> np.ndarray: ...

    def run_pixels(self, pixels: np.ndarray) -> np.ndarray: ...


class OnnxRunner(PixelInput):
    name = "onnxruntime"
    api = "InferenceSession"

    def __init__(self, path: str | Path, threads: int = 0, meta: BundleMeta | None = None) -> None:
        self.meta = meta
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
        self.input_dtype = "uint8" if self.session.get_inputs()[0].type == "tensor(uint8)" else "float32"
        shape = self.session.get_inputs()[0].shape  # ["batch", 3, H, W]; pixels: ["batch", H, W, 3]
        self.input_hw = (
            (tuple(shape[1:3]) if self.input_dtype == "uint8" else tuple(shape[2:4])) if len(shape) == 4 else None
        )

    def _run_float(self, batch_nchw: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch_nchw, dtype=np.float32)})[0]

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: pixels})[0]


class OrtFormatRunner(OnnxRunner):
    """ONNX Runtime over ``model.ort`` (its mobile format): a fixed-shape batch-1 graph, so batches run one image
    at a time."""

    name = "ort"

    def _run_float(self, batch_nchw: np.ndarray) -> np.ndarray:
        return np.concatenate([super(OrtFormatRunner, self)._run_float(image[None]) for image in batch_nchw])

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        return np.concatenate([super(OrtFormatRunner, self)._run_uint8(image[None]) for image in pixels])


class ExecuTorchRunner(PixelInput):
    """ExecuTorch's Python runtime over a ``.pte`` (XNNPACK-lowered, batch-1 NCHW input).

    The one runner that needs torch at run time: ExecuTorch's Python bindings take and return
    torch tensors. torch is imported here, when the runner is created, never when
    ``deepsquare.runtime`` is imported; on a phone the same ``.pte`` runs in ExecuTorch's C++
    runtime without torch.
    """

    name = "executorch"
    api = "Runtime"  # executorch.runtime

    def __init__(self, path: str | Path, threads: int = 0, meta: BundleMeta | None = None) -> None:
        self.meta = meta
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
        tensor = self.method.metadata.input_tensor_meta(0)
        self.input_dtype = "uint8" if int(tensor.dtype()) == UINT8_SCALAR_TYPE else "float32"
        sizes = list(tensor.sizes())  # [1, 3, H, W]; pixels: [1, H, W, 3]
        hw = sizes[1:3] if self.input_dtype == "uint8" else sizes[2:4]
        self.input_hw = (int(hw[0]), int(hw[1])) if len(sizes) == 4 else None

    def _execute(self, images: np.ndarray) -> np.ndarray:
        outputs = []
        for image in images:
            x = self._torch.from_numpy(np.ascontiguousarray(image[None]))
            outputs.append(self.method.execute([x])[0].numpy()[0].copy())
        return np.stack(outputs)

    def _run_float(self, batch_nchw: np.ndarray) -> np.ndarray:
        return self._execute(np.asarray(batch_nchw, dtype=np.float32))

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        return self._execute(pixels)


UINT8_SCALAR_TYPE = 0  # c10::ScalarType::Byte, as ExecuTorch's tensor metadata reports a uint8 input


class CoreMLRunner(PixelInput):
    """Core ML prediction exists on macOS only; elsewhere this refuses plainly.

    The exported model is a classifier (``ClassifierConfig``): ``predict`` returns the top label
    under ``classLabel`` and a ``{label: probability}`` dictionary under the probabilities output
    (``classLabel_probs``), never logits. So this runner returns probabilities, ordered by the
    bundle's class list, and the parity gate compares them with the softmax of the reference.
    """

    name = "coreml"
    api = "MLModel"
    outputs = "probabilities"
    input_dtype = "image"  # the picture itself; run() turns a normalized batch back into pixels

    def __init__(self, path: str | Path, meta: BundleMeta, compute_units: str = "ALL") -> None:
        if platform.system() != "Darwin":
            raise RuntimeUnavailable(f"Core ML prediction needs macOS; this is {platform.system()}")
        import coremltools as ct

        start = time.perf_counter()
        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
        self.init_s = time.perf_counter() - start
        self.meta = meta
        self.probabilities = self.model.get_spec().description.predictedProbabilitiesName or "classLabel_probs"

    def _run_uint8(self, pixels: np.ndarray) -> np.ndarray:
        from PIL import Image

        outputs = []
        for image in pixels:
            result = self.model.predict({"image": Image.fromarray(image, "RGB")})
            probs = result[self.probabilities]
            missing = [c for c in self.meta.classes if c not in probs]
            if missing:
                raise RuntimeError(f"Core ML returned no probability for class(es) {missing[:3]}")
            outputs.append(np.asarray([probs[c] for c in self.meta.classes], dtype=np.float32))
        return np.stack(outputs)


# The runner class of each format, by its runtime name (the format table's ``runtime``).
RUNNERS: dict[str, Callable[[Path, BundleMeta | None, int], Runner]] = {
    "onnxruntime": lambda path, meta, threads: OnnxRunner(path, threads, meta),
    "coreml": lambda path, meta, threads: CoreMLRunner(path, meta),
    "litert": lambda path, meta, threads: LiteRTRunner(path, threads, meta),
    "executorch": lambda path, meta, threads: ExecuTorchRunner(path, threads, meta),
    "ort": lambda path, meta, threads: OrtFormatRunner(path, threads, meta),
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
    entry = meta.formats.get(fmt.name) if meta is not None else None
    takes = getattr(runner, "input_dtype", "float32")
    if entry is not None and takes != entry.input_dtype and "image" not in (takes, entry.input_dtype):
        raise BundleError(
            f"{path.name} takes {takes} input but model.json says {entry.input_dtype}; "
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
