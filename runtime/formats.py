"""The one table of model formats: what each exported file is and how it runs (no torch here).

Every other place reads this table: the exporter (which converter, which precisions), the
parity gate (what the runner returns), ``model.json`` (file, layout, tensor names), the
benchmark (which runtime times which file), ``deepsquare-predict`` (which formats exist).
The converters, which need torch, are the other half of each row: one function per format
in ``deepsquare.export.converters``. Adding a format = one row here, one runner class in
``runners``, one converter function.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .runners import CoreMLRunner, ExecuTorchRunner, LiteRTRunner, OnnxRunner

if TYPE_CHECKING:
    from .bundle import BundleMeta
    from .runners import Runner

OpenRunner = Callable[[Path, "BundleMeta", int], "Runner"]  # (model file, bundle metadata, threads)


@dataclass(frozen=True)
class Format:
    name: str  # the --to name
    file: str  # the file (or folder) inside a bundle
    layout: str  # "NCHW", "NHWC" or "image" (the model takes a picture, normalizes inside)
    input_name: str
    output_name: str
    outputs: str  # "logits" or "probabilities": what the runner returns, what parity compares
    precisions: tuple[str, ...]  # the first is the format's default
    extra: str  # pip install 'deepsquare[EXTRA]' brings converter and runtime
    converter_modules: tuple[str, ...]  # importable for the export to start
    runtime: str  # the benchmark record's runtime name
    open: OpenRunner
    runs_on: str | None = None  # platform.system() the runtime needs; None: anywhere
    title: str = ""  # for tables: "ONNX" / "ONNX Runtime"
    # Seconds to convert and verify ShuffleNetV2 x1.0 at 224 px on 2 cores, measured: parallel export starts the slowest
    # first, so that the last to finish is a short one.
    convert_weight: float = 1.0
    runtime_title: str = ""

    def runs_here(self) -> bool:
        return self.runs_on is None or platform.system() == self.runs_on

    def missing_modules(self) -> list[str]:
        """Converter modules that cannot be imported, found without importing them (no converter noise)."""
        return [m for m in self.converter_modules if not _importable(m)]


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: blocked on purpose (tests, a user's shim)
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


FORMATS: dict[str, Format] = {
    "onnx": Format(
        "onnx", "model.onnx", "NCHW", "input", "logits", "logits", ("fp32", "int8"), "onnx",
        ("onnx", "onnxscript", "onnxsim", "onnxruntime"), "onnxruntime",
        lambda path, meta, threads: OnnxRunner(path, threads), title="ONNX", runtime_title="ORT", convert_weight=5.4,
    ),
    "coreml": Format(
        # fp16 by default: the Neural Engine runs ML Programs in float16 only (and coremltools defaults to it).
        "coreml", "model.mlpackage", "image", "image", "classLabel_probs", "probabilities", ("fp16", "fp32"), "coreml",
        ("coremltools",), "coreml",
        lambda path, meta, threads: CoreMLRunner(path, meta), runs_on="Darwin", title="Core ML",
        runtime_title="Core ML", convert_weight=8.6,
    ),
    "tflite": Format(
        "tflite", "model.tflite", "NHWC", "input", "logits", "logits", ("fp32", "fp16", "int8"), "tflite",
        ("litert_torch", "ai_edge_litert"), "litert",
        lambda path, meta, threads: LiteRTRunner(path, threads), title="TFLite", runtime_title="LiteRT",
        convert_weight=10.7,
    ),
    # PyTorch's own on-device runtime; the .pte has no metadata slot, so model.json carries it.
    "executorch": Format(
        "executorch", "model.pte", "NCHW", "input", "logits", "logits", ("fp32",), "executorch",
        ("executorch",), "executorch",
        lambda path, meta, threads: ExecuTorchRunner(path, threads), title="ExecuTorch",
        runtime_title="ExecuTorch", convert_weight=16.2,
    ),
}  # fmt: skip


def by_runtime(runtime: str) -> Format:
    """The format a runtime name (``onnxruntime``, ``litert``, ...) runs."""
    for fmt in FORMATS.values():
        if fmt.runtime == runtime:
            return fmt
    raise KeyError(runtime)


def all_precisions() -> list[str]:
    return list(dict.fromkeys(p for fmt in FORMATS.values() for p in fmt.precisions))


def runtime_names() -> list[str]:
    return [fmt.runtime for fmt in FORMATS.values()]
