"""The reports of one converted, verified format (run in the format's job, beside its staged file): the delegation
report (always) with the ``--require-delegated`` gate, and the layer-wise parity report (``--parity-report``, and
for a format whose parity gate failed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from deepsquare.runtime.formats import Format
from deepsquare.runtime.quiet import quiet

from .delegation import delegation_summary, not_delegated, tflite_delegation
from .parity_layers import layer_parity, layers_summary
from .verify import FormatOutcome

XNNPACK_FORMATS = ("tflite", "executorch")  # the formats --require-delegated judges


@dataclass
class ReportOptions:
    require_delegated: bool = False  # fail a TFLite / ExecuTorch graph that leaves an op outside XNNPACK
    parity_report: bool = False  # the layer-wise comparison even when the gate passed


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def measure_delegation(fmt: Format, path: Path) -> dict | None:
    if fmt.name == "tflite":
        return tflite_delegation(path)
    if fmt.name in ("onnx", "ort"):
        from .delegation_ort import onnxruntime_delegation

        return onnxruntime_delegation(path, mobile=path.suffix == ".onnx")  # .ort: its converter checked the ONNX
    return None  # ExecuTorch: the converter measured it on the lowered program; Core ML: not measured here


def add_reports(
    fmt: Format,
    folder: Path,
    exported: torch.nn.Module,
    inputs: torch.Tensor,
    precision: str,
    outcome: FormatOutcome,
    options: ReportOptions,
    verbose: bool = False,
) -> None:
    """Add the delegation and layer reports to ``outcome.info``; fail ``outcome`` where ``options`` say so.
    ``exported``: the module the file was converted from (the format's deploy form, with the pixel prologue for a
    ``--input uint8`` file), ``inputs``: the parity images as that module takes them."""
    info = outcome.info
    if ("delegation" not in info or fmt.name == "ort") and outcome.outputs is not None:  # the runtime ran it
        try:
            with quiet(verbose):
                found = measure_delegation(fmt, folder / fmt.file)
        except Exception as exc:  # a report, never a reason to lose the format
            found = {"error": first_line(exc)}
        if found is not None:
            info["delegation"] = {**found, **info.get("delegation", {})}  # ort: the converter's mobile partitions
    problems = [outcome.reason] if outcome.reason else []
    if options.require_delegated and fmt.name in XNNPACK_FORMATS and outcome.passed:
        delegation = info.get("delegation")
        why = not_delegated(delegation or {})
        if delegation is None or "error" in delegation:
            why = f"--require-delegated: the delegation could not be measured ({(delegation or {}).get('error', '?')})"
        if why:
            problems.append(why)
            outcome.passed = False
    gate_failed = outcome.parity is not None and not outcome.parity.passed
    if (options.parity_report or gate_failed) and outcome.outputs is not None:
        try:
            with quiet(verbose):
                layers = layer_parity(fmt.name, folder / fmt.file, exported, inputs, precision)
        except Exception as exc:
            layers = {"format": fmt.name, "precision": precision, "error": first_line(exc)}
        info["parity_layers"] = layers
        if gate_failed:
            problems.append(layers_summary(layers))
    outcome.reason = "; ".join(problems)


def summary_phrases(info: dict) -> str:
    """``; XNNPACK 235/251 ops in 17 partitions, ...; layer parity: ...`` for a format's summary line."""
    phrases = []
    if info.get("delegation"):
        phrases.append(delegation_summary(info["delegation"]))
    if info.get("parity_layers"):
        phrases.append(layers_summary(info["parity_layers"]))
    return "".join(f"; {phrase}" for phrase in phrases if phrase)
