"""Layer-wise parity: each module's output in the PyTorch deploy model against the same tensor in an exported file's
runtime, and the first module whose difference exceeds the bound (``parity_layers.json`` / ``parity_layers.md``).

Run by ``deepsquare export --parity-report``, and for a format whose parity gate failed. Each module's difference is
relative: max |runtime - PyTorch| over the images, divided by max |PyTorch| of that module's output (at least 1), the
measure the gate applies to the logits; the bound is the gate's relative bound of the format's precision (int8 has
none there: 0.1 here, loose enough for quantization's round-off). Modules are listed in the order they finish
in PyTorch, so the first one over the bound is where the difference starts: the modules after it inherit it.
The runtime tensors are found back as ``deepsquare.export.layer_outputs`` says; a module with no tensor of its own
in the file (folded away, fused into the op after it, an identity) is listed as not exposed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.files import write_text_atomically

from .layer_outputs import (
    EXECUTORCH_NOTE,
    MODEL_OUTPUT,
    match,
    onnx_outputs,
    output_module,
    tflite_outputs,
    torch_outputs,
)
from .parity import TOLERANCES

SCHEMA = "deepsquare-parity-layers/1"
LAYERS_JSON, LAYERS_MD = "parity_layers.json", "parity_layers.md"
IMAGES = 4  # of the parity inputs: enough to see a fault, cheap for the per-image TFLite interpreter
INT8_BOUND = 0.1
EXPOSES = ("onnx", "tflite")


def bound_for(precision: str) -> float:
    bound = TOLERANCES.get(precision, TOLERANCES["fp32"])["max_rel"]
    return bound if np.isfinite(bound) else INT8_BOUND


def layer_parity(
    fmt: str, path: Path, model: torch.nn.Module, inputs: torch.Tensor, precision: str = "fp32"
) -> dict[str, Any]:
    """The layer-wise comparison of one exported file (``model``: the deploy form that file was exported from)."""
    bound = bound_for(precision)
    record: dict[str, Any] = {"format": fmt, "precision": precision, "bound": bound, "first_diverging": None}
    if fmt not in EXPOSES:
        record["note"] = (
            EXECUTORCH_NOTE if fmt == "executorch" else f"not compared: {fmt} exposes no intermediates here"
        )
        return record
    images = inputs[:IMAGES].contiguous()
    reference, kinds = torch_outputs(model, images)
    if fmt == "onnx":
        tagged = onnx_outputs(path, images.numpy(), model, images[:1])
    else:
        tagged = tflite_outputs(path, images.numpy())
    with torch.no_grad():
        last = output_module(reference, model(images).numpy())
    for item in tagged:
        item.modules = [last if m == MODEL_OUTPUT else m for m in item.modules]
    layers, hidden = [], []
    for module, expected in reference.items():
        found = match(tagged, module, expected.shape)
        if found is None:
            hidden.append(module)
            continue
        item, value = found
        diff = float(np.abs(value.astype(np.float64) - expected).max()) if value.size else 0.0
        scale = max(1.0, float(np.abs(expected).max()) if expected.size else 0.0)
        relative = diff / scale if np.isfinite(diff) else float("inf")
        row = {
            "module": module,
            "kind": kinds[module],
            "tensor": item.name[:160],
            "fused": item.modules[1:],
            "max_abs_diff": diff,
            "relative": relative,
            "exceeds": bool(not relative <= bound),
        }
        layers.append(row)
        if row["exceeds"] and record["first_diverging"] is None:
            record["first_diverging"] = {k: row[k] for k in ("module", "kind", "fused", "max_abs_diff", "relative")}
    record.update(images=len(images), compared=len(layers), layers=layers, not_exposed=hidden)
    return record


def layers_summary(record: dict[str, Any]) -> str:
    """One phrase for the log line and the gate's reason."""
    if "note" in record:
        return f"layer parity: not compared ({LAYERS_MD} says why)"
    if "error" in record:
        return f"layer parity not run ({record['error']})"
    first = record["first_diverging"]
    if first is None:
        return f"layer parity: {record['compared']} modules within {record['bound']:g}"
    fused = f", fused with {', '.join(first['fused'])}" if first["fused"] else ""
    return (
        f"first diverging module: {first['module']} ({first['kind']}{fused}; relative diff "
        f"{first['relative']:.3g} > bound {record['bound']:g}; {LAYERS_MD})"
    )


def layer_files(report_file: Path) -> tuple[Path, Path]:
    """Where the layer report goes: beside ``export_report.json`` (in the bundle), or beside a failed export's
    report (``OUT.failed-export_report.json`` -> ``OUT.failed-parity_layers.json``)."""
    stem = report_file.name.removesuffix("export_report.json")
    return report_file.with_name(stem + LAYERS_JSON), report_file.with_name(stem + LAYERS_MD)


def take_layer_records(report: dict[str, Any]) -> dict[str, Any]:
    """Move each format's full layer record out of ``report`` (its summary stays), for ``parity_layers.json``."""
    taken = {}
    for name, record in report.get("formats", {}).items():
        layers = record.pop("parity_layers", None)
        if layers is not None:
            taken[name] = layers
            record["parity_layers"] = {
                "summary": layers_summary(layers),
                "first_diverging": layers.get("first_diverging"),
            }
    return taken


def write_layer_report(records: dict[str, Any], json_path: Path, md_path: Path) -> None:
    import json

    write_text_atomically(json_path, json.dumps({"schema": SCHEMA, "formats": records}, indent=2) + "\n")
    write_text_atomically(md_path, markdown(records))


def markdown(records: dict[str, Any]) -> str:
    lines = [
        "# Layer-wise parity",
        "",
        "Each module's output in the format's runtime against the PyTorch deploy model.",
    ]
    for name, record in records.items():
        said = record.get("note") or layers_summary(record)
        lines += ["", f"## {name} ({record.get('precision', '?')})", "", said[0].upper() + said[1:] + "."]
        if not record.get("layers"):
            continue
        lines += ["", "| module | kind | max abs diff | relative | over the bound |", "|---|---|---|---|---|"]
        for row in record["layers"]:
            fused = f" (+{', '.join(row['fused'])})" if row["fused"] else ""
            mark = "**yes**" if row["exceeds"] else ""
            lines.append(
                f"| `{row['module']}`{fused} | {row['kind']} | {row['max_abs_diff']:.3g} | {row['relative']:.3g} | "
                f"{mark} |"
            )
        if record.get("not_exposed"):
            lines += ["", f"Not exposed in the file: {', '.join(record['not_exposed'])}."]
    return "\n".join(lines) + "\n"
