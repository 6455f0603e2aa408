"""``deepsquare-export model.ckpt --to onnx|coreml|tflite|all``: deploy, convert, verify.

Examples:
  deepsquare-export runs/sq/model.ckpt --to all --out runs/sq/export
  deepsquare-export runs/sq/model.ckpt --to tflite --precision int8 --calib synthetic

The deploy transform (DSoP branches stripped, Square-Softmin folded into the FC, BatchNorm
fused, dropout removed) is checked against the training model first. Each format is then
converted in a staging folder, run in its own runtime against the PyTorch deploy model (a
fixed random batch plus real samples of the checkpoint's data set when it can be loaded),
and moved into --out only when it passes. Core ML cannot predict on Linux: there its
program's structure is validated and the report says numeric parity was not run.
Outputs: model.onnx, model.mlpackage, model.tflite, model.json (metadata the apps read),
export_report.json. Exit status 1 when any format fails, naming it and by how much.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch

from deepsquare.runtime.bundle import SIDECAR, BundleMeta
from deepsquare.runtime.files import write_text_atomically
from deepsquare.runtime.runners import RUNTIME_FOR_FORMAT, CoreMLRunner, RuntimeUnavailable, open_runner
from deepsquare.train.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from deepsquare.train.data import DataError, load_data

from .complexity import count_ops
from .deploy import DeployError, deploy_transform
from .formats import FORMATS, ConverterMissing, need
from .parity import ParityResult, compare

PRECISIONS = ("fp32", "int8")
RANDOM_SAMPLES = 8  # a fixed random batch leads every parity check


class ExportError(RuntimeError):
    """A problem with the request itself (bad --to, unwritable --out)."""


def parse_formats(text: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(FORMATS)
    for name in names:
        if name not in FORMATS:
            close = difflib.get_close_matches(name, [*FORMATS, "all"], n=1, cutoff=0.4)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ExportError(f"unknown format {name!r}{hint}; valid: {', '.join(FORMATS)}, all")
    if not names:
        raise ExportError(f"--to needs a format: {', '.join(FORMATS)}, all")
    return names


def check_converters(formats: list[str]) -> None:
    needs = {"onnx": [("onnx", "onnx"), ("onnxscript", "onnx"), ("onnxsim", "onnx"), ("onnxruntime", "onnx")],
             "coreml": [("coremltools", "coreml")],
             "tflite": [("litert_torch", "tflite"), ("ai_edge_litert", "tflite")]}  # fmt: skip
    for fmt in formats:
        for module, extra in needs[fmt]:
            need(module, extra)


def prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ExportError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc


def parity_inputs(ckpt: dict[str, Any], samples: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """A fixed random batch, plus real validation images when the data set can be loaded."""
    size = int(ckpt["input_size"])
    batch = torch.randn(RANDOM_SAMPLES, 3, size, size, generator=torch.Generator().manual_seed(seed))
    try:
        data = load_data(str(ckpt.get("data", "")), size, seed)
    except (DataError, OSError, ValueError):
        return batch, f"{RANDOM_SAMPLES} random"
    real = data.val.images[:samples]
    mean = torch.tensor(data.mean).view(1, 3, 1, 1)
    std = torch.tensor(data.std).view(1, 3, 1, 1)
    return torch.cat([batch, (real - mean) / std]), f"{RANDOM_SAMPLES} random + {len(real)} from {data.name}"


def calibration_batch(spec: str | None, ckpt: dict[str, Any], count: int = 64) -> torch.Tensor:
    size = int(ckpt["input_size"])
    data = load_data(spec or str(ckpt.get("data", "")), size)
    mean, std = torch.tensor(ckpt["mean"]).view(1, 3, 1, 1), torch.tensor(ckpt["std"]).view(1, 3, 1, 1)
    return (data.train.images[:count] - mean) / std


def move_into_place(staged: Path, final: Path) -> None:
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists():
        final.unlink()
    os.replace(staged, final)


def run_export(
    checkpoint: Path, formats: list[str], out: Path, precision: str = "fp32", calib: str | None = None,
    samples: int = 32, log=print,
) -> tuple[bool, dict[str, Any]]:  # fmt: skip
    started = time.perf_counter()
    check_converters(formats)
    prepare_out(out)
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt)
    inputs, inputs_desc = parity_inputs(ckpt, samples)
    has_real = len(inputs) > RANDOM_SAMPLES
    deployed, deploy_report = deploy_transform(model, inputs)
    log(
        f"deploy: stripped {deploy_report.stripped_branches or 'no'} DSoP branches, "
        f"Square-Softmin fold: {deploy_report.folded_softmin or 'none'}, "
        f"{deploy_report.fused_batchnorms} BN fused, params {deploy_report.params_training:,} -> "
        f"{deploy_report.params_deploy:,}; logits match (max diff {deploy_report.max_abs_diff:.2g})"
    )
    spec = ckpt["model_spec"]
    cost = count_ops(deployed, int(ckpt["input_size"]))
    meta = BundleMeta(
        arch=spec.arch, variant=spec.variant, classes=list(ckpt["classes"]), input_size=int(ckpt["input_size"]),
        mean=[float(v) for v in ckpt["mean"]], std=[float(v) for v in ckpt["std"]],
        provenance={"checkpoint": str(checkpoint), "epoch": ckpt.get("epoch"), "data": ckpt.get("data"),
                    "trained_with": ckpt.get("provenance", {}),
                    "cost": {"params": deploy_report.params_deploy, "macs": cost.macs,
                             "elementwise": cost.elementwise}},
    )  # fmt: skip
    with torch.no_grad():
        reference = deployed(inputs).numpy()
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "deploy": deploy_report.as_dict(),
                              "parity_inputs": inputs_desc, "formats": {}}  # fmt: skip
    calibration = calibration_batch(calib, ckpt) if precision == "int8" and "tflite" in formats else None
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    all_ok = True
    try:
        for fmt in formats:
            entry = FORMATS[fmt]
            t0 = time.perf_counter()
            fmt_precision = precision if fmt == "tflite" else "fp32"
            try:
                info = entry.fn(deployed, inputs[:2], staging, meta, precision=fmt_precision, calibration=calibration)
            except ConverterMissing:
                raise
            except Exception as exc:  # a converter failure is this format's failure, not the run's
                all_ok = False
                report["formats"][fmt] = {"passed": False, "reason": f"conversion failed: {exc}"}
                log(f"{fmt}: FAILED to convert: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                meta.formats.pop(fmt, None)
                continue
            convert_s = time.perf_counter() - t0
            parity: ParityResult | None = None
            note = ""
            if fmt == "coreml":
                problems = info.get("structure_problems", [])
                try:
                    write_text_atomically(staging / SIDECAR, meta.to_json())
                    runner = CoreMLRunner(staging / entry.file, meta)
                    probs = runner.run(inputs.numpy())
                    ref_probs = torch.softmax(torch.from_numpy(reference), 1).numpy()
                    parity = compare(fmt, "coreml", "fp32", probs, ref_probs)
                except RuntimeUnavailable as exc:
                    note = f"numeric parity: not run (needs macOS; {exc})"
                passed = not problems and (parity is None or parity.passed)
                reason = "; ".join(problems + ([parity.reason] if parity and not parity.passed else []))
            else:
                write_text_atomically(staging / SIDECAR, meta.to_json())
                try:
                    runner, _ = open_runner(staging, fmt)
                    got = runner.run(inputs.numpy())
                except Exception as exc:  # the runtime rejects the model: this format fails
                    got, reason = (
                        None,
                        f"{RUNTIME_FOR_FORMAT[fmt]} could not run it: {str(exc).strip().splitlines()[0]}",
                    )
                if got is None:
                    passed = False
                else:
                    # Quantized models are calibrated on real images: judge them on those alone.
                    judged = slice(RANDOM_SAMPLES, None) if fmt_precision != "fp32" and has_real else slice(None)
                    parity = compare(fmt, RUNTIME_FOR_FORMAT[fmt], fmt_precision, got[judged], reference[judged])
                    passed, reason = parity.passed, parity.reason
            record = {"passed": passed, "reason": reason, "convert_s": round(convert_s, 2), **info}
            if parity is not None:
                record["parity"] = parity.as_dict()
            if note:
                record["note"] = note
            report["formats"][fmt] = record
            if passed:
                move_into_place(staging / entry.file, out / entry.file)
                detail = (f"max abs diff {parity.max_abs_diff:.2g}, top-1 agreement {parity.top1_agreement:.0%}"
                          if parity else note)  # fmt: skip
                log(f"{fmt}: ok ({out / entry.file}; {detail}; {convert_s:.1f} s)")
            else:
                all_ok = False
                meta.formats.pop(fmt, None)
                log(f"{fmt}: FAILED parity: {reason} - no {entry.file} written")
        report["wall_s"] = round(time.perf_counter() - started, 1)
        report["machine"] = {"platform": platform.platform(), "torch": str(torch.__version__)}
        if meta.formats:
            write_text_atomically(out / SIDECAR, meta.to_json())
        write_text_atomically(out / "export_report.json", json.dumps(report, indent=2, default=str) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return all_ok, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepsquare-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by deepsquare-train")
    parser.add_argument("--to", default="all", help=f"{', '.join(FORMATS)}, a comma list, or all (default all)")
    parser.add_argument("--out", type=Path, help="output folder (default: CHECKPOINT_DIR/export)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="TFLite precision (default fp32)")
    parser.add_argument("--calib", help="--data spec of int8 calibration images (default: the checkpoint's data)")
    parser.add_argument("--samples", type=int, default=32, help="real images in the parity check (default 32)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if not args.debug:
        # The converters are chatty (deprecation warnings, per-pass progress bars); the
        # report carries what matters.
        warnings.filterwarnings("ignore")
    out = args.out or args.checkpoint.parent / "export"
    try:
        formats = parse_formats(args.to)
        ok, report = run_export(args.checkpoint, formats, out, args.precision, args.calib, args.samples)
    except (ExportError, CheckpointError, ConverterMissing, DeployError, DataError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"deepsquare-export: error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {out / 'export_report.json'} ({report['wall_s']} s)")
    if not ok:
        failed = [f for f, r in report["formats"].items() if not r["passed"]]
        print(f"deepsquare-export: error: parity failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
