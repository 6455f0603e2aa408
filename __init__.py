"""deepsquare: train DeepSquare / DSoP image classifiers and take them to phones.

The Python API beside the ``deepsquare`` command (each subcommand is a thin wrapper of one of these)::

    import deepsquare as ds

    run = ds.train(arch="shufflenetv2_x0_5", variant="sp+ss+sex", epochs=5, out="runs/sq")
    result = ds.export(run.checkpoint, to=["onnx", "tflite"], out="runs/sq/export")
    print(result.parity["onnx"]["max_abs_diff"], result.sizes)
    print(ds.load("runs/sq/export").predict("photo.jpg"))  # top-5 labels and probabilities
    ds.bench(["runs/sq/export"], to=["onnx"], runs=50)

Importing this package is cheap: torch and the runtimes are imported by the first call that needs them.
``ds.train`` and ``ds.export`` are the subpackages ``deepsquare.train`` and ``deepsquare.export`` made callable.
DeepSquare: "DeepSquare: Boosting the Learning Power of Deep Convolutional Neural Networks with Elementwise
Square Operators", arXiv:1906.04979.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these come lazily through __getattr__
    from deepsquare.export.api import BenchResult, ExportFailed, ExportResult, bench
    from deepsquare.runtime.predictor import Prediction, Predictor, load
    from deepsquare.train.api import TrainResult

# name -> module that defines it (imported on first use)
_LAZY = {
    "load": "deepsquare.runtime.predictor",
    "Predictor": "deepsquare.runtime.predictor",
    "Prediction": "deepsquare.runtime.predictor",
    "bench": "deepsquare.export.api",
    "BenchResult": "deepsquare.export.api",
    "ExportResult": "deepsquare.export.api",
    "ExportFailed": "deepsquare.export.api",
    "TrainResult": "deepsquare.train.api",
}

__all__ = [
    "BenchResult",
    "ExportFailed",
    "ExportResult",
    "Prediction",
    "Predictor",
    "TrainResult",
    "__version__",
    "bench",
    "export",
    "load",
    "train",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepsquare")
    except PackageNotFoundError:  # run from a source tree without an install
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name in ("train", "export"):  # callable subpackages: ds.train(...), ds.export(...)
        return import_module(f"deepsquare.{name}")
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    raise AttributeError(f"module 'deepsquare' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
