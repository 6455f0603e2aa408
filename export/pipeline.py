"""The export pipeline: checkpoint -> deploy model -> each format, converted and verified.

The deploy transform (DSoP branches stripped, Square-Softmin folded into the FC, BatchNorm
fused, dropout removed) is checked against the training model first. Each format is then
converted in a staging folder, run in its own runtime against the PyTorch deploy model (a
fixed random batch plus real samples of the checkpoint's data set when it can be loaded); the
bundle replaces ``out`` only when every format asked for passed. A failure of any kind leaves
``out`` as it was (the failed attempt's report goes beside it, see ``publish.report_path``), and
one export at a time writes a given ``out`` (``bundle_lock``). Where a runtime cannot run here (Core ML off
macOS) the program's structure is validated and the report says numeric parity was not run.

Everything about a format comes from the table in ``deepsquare.runtime.formats`` and its
converter function in ``deepsquare.export.converters``. The steps, one module each:
``request`` (what is asked, and the checks that refuse it early), ``verify`` (the parity gate of one
format), ``jobs`` (one format's conversion, here or in a worker process), ``publish`` (the bundle
replaced whole). This module strings them together: :func:`run_export`.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.bundle import SIDECAR, BundleError, BundleMeta, model_sha256
from deepsquare.runtime.files import write_text_atomically
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.op_profile import op_map_path
from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.data import load_data

from .bundle_lock import bundle_lock
from .complexity import count_ops
from .deploy import OVERFLOW_CHECK_IMAGES, DeployReport, deploy_transform, refuse_overflow
from .format_reports import ReportOptions, summary_phrases
from .golden import write_contract_files
from .int8_units import resolve_keep_float
from .jobs import ConvertJob, format_entry, run_jobs
from .parity_layers import layer_files, take_layer_records, write_layer_report
from .publish import FAILED_REPORT_SUFFIX, REPORT, bundle_target, new_staging, publish, recover, report_path
from .request import ExportError, ExportRequest, check_request, parse_formats, precision_for, prepare_out
from .verify import FormatOutcome, ParityInputs, held_out_accuracy, parity_inputs

# The names the commands import from here; each is defined in the module named above.
__all__ = [
    "ExportError",
    "ExportRequest",
    "calibration_batch",
    "check_request",
    "format_entry",
    "parse_formats",
    "prepare_out",
    "run_export",
]


def calibration_batch(spec: str | None, ckpt: Checkpoint, count: int = 64) -> torch.Tensor:
    data = load_data(spec or ckpt.data, ckpt.input_size)
    return ckpt.normalize(data.train.images[:count])


def bundle_meta(ckpt: Checkpoint, request: ExportRequest, cost: dict[str, int]) -> BundleMeta:
    return BundleMeta(
        **ckpt.bundle_meta(),
        provenance={
            "checkpoint": str(request.checkpoint),
            "epoch": ckpt.epoch,
            "data": ckpt.data,
            "trained_with": ckpt.provenance,
            "cost": cost,
        },
        input=request.input,
    )


def format_record(outcome: FormatOutcome, precision: str, seconds: float) -> dict[str, Any]:
    record = {
        "passed": outcome.passed,
        "reason": outcome.reason,
        "convert_s": round(seconds, 2),
        "precision": precision,
        **outcome.info,
    }
    if outcome.parity is not None:
        record["parity"] = outcome.parity.as_dict()
    if outcome.note:
        record["note"] = outcome.note
    return record


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@dataclass
class Deployed:
    """The deploy model and what every format is checked against."""

    model: torch.nn.Module
    report: DeployReport
    checked: ParityInputs
    reference: np.ndarray  # the deploy model's outputs for ``checked.images``
    meta: BundleMeta  # the bundle's sidecar; each format that passes adds its entry


def deploy(ckpt: Checkpoint, request: ExportRequest, log: Callable[[str], None]) -> Deployed:
    """The checkpoint's deploy model (checked against the training model), its cost and its reference outputs."""
    model = ckpt.build_model()
    checked = parity_inputs(ckpt, request.samples, pixels=request.input == "uint8")
    deployed, deploy_report = deploy_transform(model, checked.images)
    finite = ""
    if checked.data is not None:  # the few parity samples would miss a model that overflows on 1% of its inputs
        val = checked.data.val.images[:OVERFLOW_CHECK_IMAGES]
        refuse_overflow(deployed, ckpt.normalize(val), f"{len(val)} validation images of {checked.data.name}")
        finite = f", finite on {len(val)} validation images"
    log(
        f"deploy: stripped {deploy_report.stripped_branches or 'no'} DSoP branches, "
        f"Square-Softmin fold: {deploy_report.folded_softmin or 'none'}, "
        f"{deploy_report.fused_batchnorms} BN fused, params {deploy_report.params_training:,} -> "
        f"{deploy_report.params_deploy:,}; logits match (max diff {deploy_report.max_abs_diff:.2g}){finite}"
    )
    ops = count_ops(deployed, ckpt.input_size)
    meta = bundle_meta(
        ckpt, request, {"params": deploy_report.params_deploy, "macs": ops.macs, "elementwise": ops.elementwise}
    )
    with torch.no_grad():
        reference = deployed(checked.images).numpy()
    return Deployed(deployed, deploy_report, checked, reference, meta)


def log_outcome(job: ConvertJob, outcome: FormatOutcome, seconds: float, out: Path, log: Callable[[str], None]) -> None:
    name, fmt, precision = job.fmt, FORMATS[job.fmt], job.precision
    if outcome.passed:
        parity = outcome.parity
        figures = (
            f"max abs diff {parity.max_abs_diff:.2g}, top-1 agreement {parity.top1_agreement:.0%}" if parity else ""
        )
        detail = f"{outcome.note} ({figures})" if outcome.note and figures else outcome.note or figures
        detail += summary_phrases(outcome.info)  # delegation, layer parity
        log(f"{name}: ok, {precision} ({out / fmt.file}; {detail}; {seconds:.1f} s)")
    elif outcome.reason.startswith("conversion failed: "):
        first = outcome.reason.removeprefix("conversion failed: ").strip().splitlines() or ["?"]
        log(f"{name}: FAILED to convert: {first[0]} - no {fmt.file} written")
    else:
        gate = "--require-delegated" if outcome.parity and outcome.parity.passed and outcome.reason else "parity"
        log(f"{name}: FAILED {gate}: {outcome.reason} - no {fmt.file} written")


def convert_all(
    jobs: list[ConvertJob],
    deployed: Deployed,
    request: ExportRequest,
    staging: Path,
    log: Callable[[str], None],
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run the jobs; each file that passes moves into ``staging`` and gets its entry in ``deployed.meta``.

    Returns (all passed, each format's report record). The bundle never ships a file that failed: it stays in the
    format's subfolder, removed with it."""
    workers = request.workers()
    if workers > 1:
        log(f"converting {len(jobs)} formats, {workers} at a time in their own processes (--jobs)")
    all_ok = True
    records: dict[str, dict[str, Any]] = {}
    labels = deployed.checked.labels
    for job, outcome, seconds in run_jobs(jobs, workers, log):
        name, fmt, precision = job.fmt, FORMATS[job.fmt], job.precision
        records[name] = format_record(outcome, precision, seconds)
        if precision != "fp32" and labels is not None and outcome.outputs is not None:
            records[name]["accuracy"] = held_out_accuracy(outcome.outputs, deployed.reference, labels)
        if outcome.passed:
            os.replace(job.folder / fmt.file, staging / fmt.file)
            for companion in fmt.companions:  # e.g. model.ort's required-operators config
                os.replace(job.folder / companion, staging / companion)
            if op_map_path(job.folder / fmt.file).exists():  # the op -> module map deepsquare profile reads
                os.replace(op_map_path(job.folder / fmt.file), op_map_path(staging / fmt.file))
            deployed.meta.formats[name] = format_entry(fmt, precision, deployed.meta.input)
            deployed.meta.sha256[fmt.file] = model_sha256(staging / fmt.file)
        else:
            all_ok = False
        log_outcome(job, outcome, seconds, request.out, log)
        remove(job.folder)
    return all_ok, records


# A format that failed for one of these failed because of the disk, not because of its model: the run's error.
DISK_ERRORS = tuple(os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO))


def disk_error(records: dict[str, dict[str, Any]]) -> str | None:
    """The disk error behind a failed format ("No space left on device"), if one is."""
    for name, record in records.items():
        found = [text for text in DISK_ERRORS if text in str(record.get("reason") or "")]
        if not record.get("passed") and found:
            return f"{found[0]}, while writing {name}"
    return None


def not_written(cause: str, out: Path) -> str:
    return f"could not write the bundle ({cause}); the previous content of {out} is untouched"


@dataclass
class Exported:
    ok: bool  # every format passed: the bundle was published
    report: dict[str, Any]
    report_file: Path  # in the bundle, or beside --out when a failed export left --out as it was


def run_export(request: ExportRequest, log: Callable[[str], None] = print) -> tuple[bool, dict[str, Any]]:
    """Export ``request.checkpoint`` to each format; (all passed, the report). See :func:`export_bundle`."""
    done = export_bundle(request, log)
    return done.ok, done.report


def export_bundle(request: ExportRequest, log: Callable[[str], None] = print) -> Exported:
    """Export ``request.checkpoint`` to each format; publish the bundle into ``out`` when every format passed."""
    started = time.perf_counter()
    check_request(request)
    with bundle_lock(request.out):
        ckpt = Checkpoint.load(request.checkpoint)
        deployed = deploy(ckpt, request, log)
        report: dict[str, Any] = {
            "checkpoint": str(request.checkpoint),
            "deploy": deployed.report.as_dict(),
            "parity_inputs": deployed.checked.description,
            "formats": {},
        }
        needs_calibration = any(precision_for(FORMATS[n], request.precision) == "int8" for n in request.formats)
        calibration = calibration_batch(request.calib, ckpt) if needs_calibration else None
        keep_float, swept = keep_float_choice(request, deployed, log)  # a bad module path: refused here
        for note in recover(request.out):
            log(note)
        staging = new_staging(request.out)
        try:
            if swept is not None:  # --sensitivity: sensitivity.json / .md in the bundle
                swept.write(staging)
            all_ok, records = convert_all(
                make_jobs(request, deployed, calibration, staging, keep_float), deployed, request, staging, log
            )
            report["formats"] = {name: records[name] for name in request.formats}  # in the order asked
            report["wall_s"] = round(time.perf_counter() - started, 1)
            report["machine"] = {"platform": platform.platform(), "torch": str(torch.__version__)}
            cause = disk_error(records)
            if cause:
                raise ExportError(not_written(cause, request.out))
            if all_ok:  # the schema copy, the golden self-check and the first-screen samples
                write_contract_files(staging, deployed.meta, deployed.model, deployed.checked.data, log)
            report_file = finish(staging, request, deployed.meta, report, all_ok)
        except OSError as exc:
            raise ExportError(not_written(exc.strerror or str(exc), request.out)) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Exported(all_ok, report, report_file)


def keep_float_choice(
    request: ExportRequest, deployed: Deployed, log: Callable[[str], None]
) -> tuple[dict[str, tuple[str, ...]], Any]:
    """Each int8 format's module paths kept in float: ``--keep-float`` resolved on the deploy model, or the
    ``--sensitivity`` sweep's choice (export/sensitivity.py: calibrated on ``--calib``, evaluated on the
    checkpoint's held-out split); and the sweep's result (None without ``--sensitivity``)."""
    int8 = [name for name in request.formats if precision_for(FORMATS[name], request.precision) == "int8"]
    if not int8:
        return {}, None
    if request.sensitivity:
        from .sensitivity import sweep

        swept = sweep(request.checkpoint, int8, calib=request.calib, log=log, verbose=request.verbose)
        return {name: swept.chosen().get(name, ()) for name in int8}, swept
    chosen = {name: resolve_keep_float(deployed.model, request.keep_float, name) for name in int8}
    for name, paths in chosen.items():
        if paths:
            log(f"{name}: int8, {len(paths)} module(s) kept float ({', '.join(paths[:4])}{', ...' * (len(paths) > 4)})")
    return chosen, None


def make_jobs(
    request: ExportRequest,
    deployed: Deployed,
    calibration: torch.Tensor | None,
    staging: Path,
    keep_float: dict[str, tuple[str, ...]] | None = None,
) -> list[ConvertJob]:
    jobs = [
        ConvertJob(
            name,
            deployed.model,
            deployed.checked.images,
            deployed.reference,
            staging / f".{name}",
            deployed.meta,
            precision_for(FORMATS[name], request.precision),
            calibration,
            request.verbose,
            ReportOptions(request.require_delegated, request.parity_report),
            (keep_float or {}).get(name, ()),
        )
        for name in request.formats
    ]
    for job in jobs:
        job.folder.mkdir()
    return jobs


def finish(staging: Path, request: ExportRequest, meta: BundleMeta, report: dict[str, Any], all_ok: bool) -> Path:
    """Publish the bundle when every format passed; else leave ``out`` as it was. Return where the report is."""
    layers = take_layer_records(report)  # parity_layers.json/.md: beside the report, wherever it goes
    text = json.dumps(report, indent=2, default=str) + "\n"
    if not all_ok:  # no file of this attempt enters --out; its report goes where it damages nothing
        path = report_path(request.out, published=False)
        if layers:
            write_layer_report(layers, *layer_files(path))
        write_text_atomically(path, text)
        return path
    meta.formats = {name: meta.formats[name] for name in request.formats}
    meta.sha256 = {meta.formats[name].file: meta.sha256[meta.formats[name].file] for name in request.formats}
    try:
        meta.check()  # against the schema: a sidecar that breaks it is a bug, and nothing is published
    except BundleError as exc:
        raise ExportError(f"this export wrote an invalid model.json ({exc}); nothing was published (a bug)") from exc
    write_text_atomically(staging / SIDECAR, meta.to_json())
    write_text_atomically(staging / REPORT, text)
    if layers:
        write_layer_report(layers, *layer_files(staging / REPORT))
    publish(staging, request.out)
    target = bundle_target(request.out)
    failed = target.parent / f"{target.name}{FAILED_REPORT_SUFFIX}"
    for old in (failed, *layer_files(failed)):  # an older attempt's
        old.unlink(missing_ok=True)
    return report_path(request.out, published=True)
