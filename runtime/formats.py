"""The one table of model formats: what each exported file is and how it runs (no torch here).

Every other place reads this table: the exporter (which converter, which precisions), the
parity gate (what the runner returns), ``model.json`` (file, layout, tensor names), the
benchmark (which runtime times which file), ``deepsquare predict`` (which formats exist).
The converters, which need torch, are the other half of each row: one function per format
in ``deepsquare.export.converters``. Adding a format = one row here, one runner class in
``runners`` (its ``RUNNERS`` entry), one converter function.
"""

from __future__ import annotations

import difflib
import importlib.util
import platform
import sys
from dataclasses import dataclass


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
    runtime: str  # the benchmark record's runtime name; its runner class is RUNNERS[runtime] in ``runners``
    runs_on: str | None = None  # platform.system() the runtime needs; None: anywhere
    title: str = ""  # for tables: "ONNX" / "ONNX Runtime"
    # Seconds to convert and verify ShuffleNetV2 x1.0 at 224 px on 2 cores, measured: parallel export starts the slowest
    # first, so that the last to finish is a short one.
    convert_weight: float = 1.0
    runtime_title: str = ""
    in_all: bool = True  # part of ``--to all``; False: asked for by name only (``ort``: the ONNX graph again)
    companions: tuple[str, ...] = ()  # files the converter writes beside ``file``, published with it

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
        name="onnx",
        file="model.onnx",
        layout="NCHW",
        input_name="input",
        output_name="logits",
        outputs="logits",
        precisions=("fp32", "int8"),
        extra="onnx",
        converter_modules=("onnx", "onnxscript", "onnxsim", "onnxruntime"),
        runtime="onnxruntime",
        title="ONNX",
        runtime_title="ORT",
        convert_weight=5.4,
    ),
    "coreml": Format(
        name="coreml",
        file="model.mlpackage",
        layout="image",
        input_name="image",
        output_name="classLabel_probs",
        outputs="probabilities",
        # fp16 by default: the Neural Engine runs ML Programs in float16 only (and coremltools defaults to it).
        precisions=("fp16", "fp32"),
        extra="coreml",
        converter_modules=("coremltools",),
        runtime="coreml",
        runs_on="Darwin",
        title="Core ML",
        runtime_title="Core ML",
        convert_weight=8.6,
    ),
    "tflite": Format(
        name="tflite",
        file="model.tflite",
        layout="NHWC",
        input_name="input",
        output_name="logits",
        outputs="logits",
        precisions=("fp32", "fp16", "int8"),
        extra="tflite",
        converter_modules=("litert_torch", "ai_edge_litert"),
        runtime="litert",
        title="TFLite",
        runtime_title="LiteRT",
        convert_weight=10.7,
    ),
    # PyTorch's own on-device runtime; the .pte has no metadata slot, so model.json carries it.
    "executorch": Format(
        name="executorch",
        file="model.pte",
        layout="NCHW",
        input_name="input",
        output_name="logits",
        outputs="logits",
        precisions=("fp32", "int8"),
        extra="executorch",
        converter_modules=("executorch",),
        runtime="executorch",
        title="ExecuTorch",
        runtime_title="ExecuTorch",
        convert_weight=16.2,
    ),
    # ONNX Runtime's mobile format: a fixed-shape (batch 1) ONNX graph in the mobile EPs' form, converted by
    # onnxruntime's own tool, with the required-operators config a reduced ORT build needs (export/convert_ort.py).
    "ort": Format(
        name="ort",
        file="model.ort",
        layout="NCHW",
        input_name="input",
        output_name="logits",
        outputs="logits",
        precisions=("fp32",),
        extra="onnx",
        converter_modules=("onnx", "onnxscript", "onnxsim", "onnxruntime"),
        runtime="ort",
        title="ORT format",
        runtime_title="ORT (.ort)",
        convert_weight=6.0,
        in_all=False,
        companions=("model.required_operators.config",),
    ),
}


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


def parse_format_names(text: str) -> list[str]:
    """``--to``: ``"onnx,tflite"`` or ``"all"`` -> format names, in the order given; ValueError naming the bad one."""
    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if names == ["all"]:
        return [name for name, fmt in FORMATS.items() if fmt.in_all]
    if "all" in names:
        every = ", ".join(name for name, fmt in FORMATS.items() if fmt.in_all)
        raise ValueError(f"--to all already means {every}; give 'all' alone or a list of formats")
    for name in names:
        if name not in FORMATS:
            close = difflib.get_close_matches(name, [*FORMATS, "all"], n=1, cutoff=0.4)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown format {name!r}{hint}; valid: {', '.join(FORMATS)}, all")
    if not names:
        raise ValueError(f"--to needs a format: {', '.join(FORMATS)}, all")
    return names
