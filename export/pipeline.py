"""The export pipeline: checkpoint -> deploy model -> each format, converted and verified.

The deploy transform (DSoP branches stripped, Square-Softmin folded into the FC, BatchNorm
fused, dropout removed) is checked against the training model first. Each format is then
converted in a staging folder, run in its own runtime against the PyTorch deploy model (a
fixed random batch plus real samples of the checkpoint's data set when it can be loaded),
and moved into ``out`` only when it passes. Where a runtime cannot run here (Core ML off
macOS) the program's structure is validated and the report says numeric parity was not run.

Everything about a format comes from the table in ``deepsquare.runtime.formats`` and its
converter function in ``deepsquare.export.converters``.
"""

from __future__ import annotations

import copy
import difflib
import json
import multiprocessing
import os
import pickle
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepsquare.runtime.bundle import SIDECAR, BundleMeta, FormatEntry
from deepsquare.runtime.files import write_text_atomically
from deepsquare.runtime.formats import FORMATS, Format
from deepsquare.runtime.probe import crash_reason
from deepsquare.runtime.quiet import quiet
from deepsquare.runtime.runners import RuntimeUnavailable, open_model
from deepsquare.train.checkpoint import Checkpoint, CheckpointError
from deepsquare.train.data import DataError, load_data

from .complexity import count_ops
from .converters import CONVERTERS, ConverterMissing
from .deploy import deploy_transform
from .parity import ParityResult, compare
from .publish import REPORT, new_staging, publish, recover

RANDOM_SAMPLES = 8  # a fixed random batch leads every parity check


class ExportError(RuntimeError):
    """A problem with the request itself (bad --to, unwritable --out, missing converter)."""


@dataclass
class ExportRequest:
    checkpoint: Path
    formats: list[str]
    out: Path
    precision: str | None = None  # applied to the formats that offer it; None or the others: each format's default
    calib: str | None = None  # --data spec of int8 calibration images (default: the checkpoint's data)
    samples: int = 32  # real images in the parity check
    verbose: bool = False  # show the converters' own output
    jobs: int = 0  # formats converted at once, each in its own process; 0: one per core; 1: all in this process

    def workers(self) -> int:
        wanted = self.jobs or os.cpu_count() or 1
        return max(1, min(wanted, len(self.formats)))


@dataclass
class FormatOutcome:
    passed: bool
    reason: str = ""
    parity: ParityResult | None = None
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    outputs: np.ndarray | None = None  # what the runtime returned for the parity inputs


def parse_formats(text: str) -> list[str]:
    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if names == ["all"]:
        return list(FORMATS)
    if "all" in names:
        raise ExportError(f"--to all already means {', '.join(FORMATS)}; give 'all' alone or a list of formats")
    for name in names:
        if name not in FORMATS:
            close = difflib.get_close_matches(name, [*FORMATS, "all"], n=1, cutoff=0.4)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ExportError(f"unknown format {name!r}{hint}; valid: {', '.join(FORMATS)}, all")
    if not names:
        raise ExportError(f"--to needs a format: {', '.join(FORMATS)}, all")
    return names


def precision_for(fmt: Format, asked: str | None) -> str:
    return asked if asked in fmt.precisions else fmt.precisions[0]


def check_request(request: ExportRequest) -> None:
    """Everything that can be refused in a second, before any converter is imported."""
    for name in request.formats:
        if name not in FORMATS:
            raise ExportError(f"unknown format {name!r}; valid: {', '.join(FORMATS)}")
    offered = [n for n in request.formats if request.precision in FORMATS[n].precisions]
    if request.precision is not None and not offered:
        by_format = "; ".join(f"{n}: {', '.join(FORMATS[n].precisions)}" for n in request.formats)
        raise ExportError(
            f"precision {request.precision!r} is offered by none of {', '.join(request.formats)} ({by_format})"
        )
    if request.samples < 0:
        raise ExportError(f"--samples must be >= 0, got {request.samples}")
    if request.jobs < 0:
        raise ExportError(f"--jobs must be >= 0 (0: one per core), got {request.jobs}")
    for name in request.formats:
        missing = FORMATS[name].missing_modules()
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            extra = FORMATS[name].extra
            raise ConverterMissing(f"{', '.join(missing)} {verb} not installed: pip install 'deepsquare[{extra}]'")
    if not request.checkpoint.is_file():
        what = "is not a file" if request.checkpoint.exists() else "does not exist"
        raise CheckpointError(f"checkpoint {request.checkpoint} {what}")
    prepare_out(request.out)


def prepare_out(out: Path) -> None:
    """--out and the folder it sits in must be writable (the new bundle is staged beside it)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"cannot write to --out {out}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for folder in (out, out.resolve().parent):
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
    except OSError as exc:
        raise ExportError(f"cannot write to --out {out}: {exc.strerror or exc}") from exc


@dataclass
class ParityInputs:
    images: torch.Tensor  # normalized NCHW: RANDOM_SAMPLES random, then the real ones
    description: str
    labels: np.ndarray | None = None  # of the real images: quantized formats report their accuracy


def parity_inputs(ckpt: Checkpoint, samples: int, seed: int = 0) -> ParityInputs:
    """A fixed random batch, plus real validation images (held out from training) when the data set loads."""
    size = ckpt.input_size
    batch = torch.randn(RANDOM_SAMPLES, 3, size, size, generator=torch.Generator().manual_seed(seed))
    if samples == 0:
        return ParityInputs(batch, f"{RANDOM_SAMPLES} random")
    try:
        data = load_data(ckpt.data, size, seed)
    except (DataError, OSError, ValueError):
        return ParityInputs(batch, f"{RANDOM_SAMPLES} random")
    real = data.val.images[:samples]
    description = f"{RANDOM_SAMPLES} random + {len(real)} from {data.name}"
    return ParityInputs(torch.cat([batch, ckpt.normalize(real)]), description, data.val.labels[:samples].numpy())


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
    )


def format_entry(fmt: Format, precision: str) -> FormatEntry:
    return FormatEntry(fmt.file, fmt.layout, fmt.input_name, fmt.output_name, precision, {"outputs": fmt.outputs})


def emulated_fp16(fmt: Format, deployed: torch.nn.Module, inputs: torch.Tensor, reference: np.ndarray) -> ParityResult:
    """The deploy model with float16 numbers: weights, the input and every layer's output rounded to float16
    (computed in float32, as fast as the reference). What it catches is what breaks fp16 deployments:
    values past 65504 (a squared activation overflows to inf), tiny values flushed to 0, lost precision."""
    model = copy.deepcopy(deployed).float()
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())

    def to_half(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return output.half().float() if isinstance(output, torch.Tensor) else output

    for module in model.modules():
        if not list(module.children()):  # every leaf layer's output is stored in float16
            module.register_forward_hook(to_half)
    with torch.no_grad():
        got = model(inputs.half().float()).numpy()
    return compare(fmt.name, "float16-rounded", "fp16", got, reference)


def verify(
    fmt: Format,
    staging: Path,
    meta: BundleMeta,
    deployed: torch.nn.Module,
    inputs: torch.Tensor,
    reference: np.ndarray,
    precision: str,
    info: dict[str, Any],
    judged: slice,
) -> FormatOutcome:
    """Run the staged file in its runtime against the deploy model's outputs."""
    outcome = FormatOutcome(passed=True, info=info)
    problems = list(info.get("structure_problems", []))
    if not fmt.runs_here():
        outcome.note = f"numeric parity: not run (needs {'macOS' if fmt.runs_on == 'Darwin' else fmt.runs_on})"
        if precision == "fp16":
            # What can be checked here: the deploy model itself, evaluated in float16, against float32.
            outcome.parity = emulated_fp16(fmt, deployed, inputs, reference)
            outcome.note += "; fp16 checked here with the deploy model's weights and activations rounded to float16"
            if not outcome.parity.passed:
                problems.append(f"in float16: {outcome.parity.reason}")
        outcome.passed, outcome.reason = not problems, "; ".join(problems)
        return outcome
    write_text_atomically(staging / SIDECAR, meta.to_json())
    if precision == "int8":  # a quantized file can crash a delegate outright (runtime/probe.py): try it in a child
        crash = crash_reason(fmt.name, staging / fmt.file, asdict(meta), 1, meta.input_size)
        if crash is not None:
            return FormatOutcome(
                False, f"{fmt.runtime} could not run the int8 file: {crash}; export it in fp32", info=info
            )
    try:
        runner = open_model(fmt, staging / fmt.file, meta, 0)
        got = runner.run(inputs.numpy())
    except RuntimeUnavailable as exc:
        outcome.note = f"numeric parity: not run ({exc})"
        outcome.passed, outcome.reason = not problems, "; ".join(problems)
        return outcome
    except Exception as exc:  # the runtime rejects the model: this format fails
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return FormatOutcome(False, f"{fmt.runtime} could not run it: {first}", info=info)
    outcome.outputs = got
    expected = reference if fmt.outputs == "logits" else torch.softmax(torch.from_numpy(reference), 1).numpy()
    outcome.parity = compare(fmt.name, fmt.runtime, precision, got[judged], expected[judged])
    if not outcome.parity.passed:
        problems.append(outcome.parity.reason)
    outcome.passed, outcome.reason = not problems, "; ".join(problems)
    return outcome


def convert_and_verify(
    fmt: Format,
    deployed: torch.nn.Module,
    inputs: torch.Tensor,
    reference: np.ndarray,
    staging: Path,
    meta: BundleMeta,
    precision: str,
    calibration: torch.Tensor | None,
    has_real: bool,
    verbose: bool,
) -> FormatOutcome:
    meta_with_entry = BundleMeta(**{**meta.__dict__, "formats": {fmt.name: format_entry(fmt, precision)}})
    with quiet(verbose) as captured:
        try:
            info = CONVERTERS[fmt.name](
                deployed.for_format(fmt.name),
                inputs[:2],
                staging,
                meta_with_entry,
                precision=precision,
                calibration=calibration,
            )
        except ConverterMissing:
            raise
        except Exception as exc:  # a converter failure is this format's failure, not the run's
            failure = exc
        else:
            failure = None
    if failure is not None:
        return FormatOutcome(False, f"conversion failed: {failure}", info={"converter_output": captured.tail()})
    # Quantized models are calibrated on real images: judge them on those alone.
    judged = slice(RANDOM_SAMPLES, None) if precision != "fp32" and has_real else slice(None)
    with quiet(verbose):
        return verify(fmt, staging, meta_with_entry, deployed, inputs, reference, precision, info, judged)


@dataclass
class ConvertJob:
    """What one format's conversion and parity check need: pickled whole to a worker process."""

    fmt: str
    deployed: torch.nn.Module
    inputs: torch.Tensor
    reference: np.ndarray
    folder: Path  # the format's own staging subfolder: parallel converters never share a file
    meta: BundleMeta
    precision: str
    calibration: torch.Tensor | None
    verbose: bool


def run_job(job: ConvertJob) -> tuple[FormatOutcome, float]:
    started = time.perf_counter()
    has_real = len(job.inputs) > RANDOM_SAMPLES  # real images follow the fixed random batch
    outcome = convert_and_verify(
        FORMATS[job.fmt],
        job.deployed,
        job.inputs,
        job.reference,
        job.folder,
        job.meta,
        job.precision,
        job.calibration,
        has_real,
        job.verbose,
    )
    return outcome, time.perf_counter() - started


def share_cores(workers: int) -> None:
    """Worker initializer: the cores split between the workers, so that two converters do not fight for them."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def run_pickled_job(payload: bytes) -> tuple[FormatOutcome, float]:
    return run_job(pickle.loads(payload))


def run_jobs(
    jobs: list[ConvertJob], workers: int, log: Callable[[str], None] = print
) -> Iterator[tuple[ConvertJob, FormatOutcome, float]]:
    """Each job with its outcome and seconds, as it finishes: here one after another, or in ``workers`` fresh
    processes (spawned: a forked copy of a process that already ran torch can deadlock in its thread pool). The
    converters are single-threaded for most of their run, so formats overlap well (README, "Export")."""
    payloads: list[bytes] = []
    if workers > 1:
        try:  # here, not in the pool's feeder thread, where a pickling error leaves the pool hanging
            payloads = [pickle.dumps(job) for job in jobs]
        except Exception as err:  # any reason a job cannot travel: convert here instead
            log(f"cannot send the model to a worker process ({type(err).__name__}: {err}); converting here")
            workers = 1
    if workers <= 1:
        for job in jobs:
            yield job, *run_job(job)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=share_cores, initargs=(workers,)) as pool:
        # The slowest converters start first, so that the last one to finish is a short one.
        order = sorted(range(len(jobs)), key=lambda i: -FORMATS[jobs[i].fmt].convert_weight)
        futures = {pool.submit(run_pickled_job, payloads[i]): jobs[i] for i in order}
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    outcome, seconds = future.result()
                except BrokenProcessPool:  # a crash in one converter takes its worker down, and the pool with it
                    reason = "the converter's process died (a crash in native code, or out of memory)"
                    outcome = FormatOutcome(False, f"conversion failed: {reason}")
                    seconds = 0.0
                yield job, outcome, seconds
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


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


def held_out_accuracy(got: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 of the exported model and of the fp32 deploy model on the real (validation) images."""
    real = slice(RANDOM_SAMPLES, None)
    exported = float(np.mean(got[real].argmax(1) == labels))
    fp32 = float(np.mean(reference[real].argmax(1) == labels))
    return {"images": len(labels), "top1": exported, "top1_fp32": fp32, "delta_points": 100 * (exported - fp32)}


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def run_export(request: ExportRequest, log: Callable[[str], None] = print) -> tuple[bool, dict[str, Any]]:
    """Export ``request.checkpoint`` to each format; (all passed, the report written to ``out``)."""
    started = time.perf_counter()
    check_request(request)
    ckpt = Checkpoint.load(request.checkpoint)
    model = ckpt.build_model()
    checked = parity_inputs(ckpt, request.samples)
    inputs, inputs_desc = checked.images, checked.description
    deployed, deploy_report = deploy_transform(model, inputs)
    log(
        f"deploy: stripped {deploy_report.stripped_branches or 'no'} DSoP branches, "
        f"Square-Softmin fold: {deploy_report.folded_softmin or 'none'}, "
        f"{deploy_report.fused_batchnorms} BN fused, params {deploy_report.params_training:,} -> "
        f"{deploy_report.params_deploy:,}; logits match (max diff {deploy_report.max_abs_diff:.2g})"
    )
    ops = count_ops(deployed, ckpt.input_size)
    meta = bundle_meta(
        ckpt, request, {"params": deploy_report.params_deploy, "macs": ops.macs, "elementwise": ops.elementwise}
    )
    with torch.no_grad():
        reference = deployed(inputs).numpy()
    report: dict[str, Any] = {
        "checkpoint": str(request.checkpoint),
        "deploy": deploy_report.as_dict(),
        "parity_inputs": inputs_desc,
        "formats": {},
    }
    needs_calibration = any(precision_for(FORMATS[n], request.precision) == "int8" for n in request.formats)
    calibration = calibration_batch(request.calib, ckpt) if needs_calibration else None
    for note in recover(request.out):
        log(note)
    staging = new_staging(request.out)
    all_ok = True
    try:
        jobs = [
            ConvertJob(
                name,
                deployed,
                inputs,
                reference,
                staging / f".{name}",
                meta,
                precision_for(FORMATS[name], request.precision),
                calibration,
                request.verbose,
            )
            for name in request.formats
        ]
        for job in jobs:
            job.folder.mkdir()
        workers = request.workers()
        if workers > 1:
            log(f"converting {len(jobs)} formats, {workers} at a time in their own processes (--jobs)")
        records: dict[str, dict[str, Any]] = {}
        for job, outcome, seconds in run_jobs(jobs, workers, log):
            name, fmt, precision = job.fmt, FORMATS[job.fmt], job.precision
            records[name] = format_record(outcome, precision, seconds)
            if precision != "fp32" and checked.labels is not None and outcome.outputs is not None:
                records[name]["accuracy"] = held_out_accuracy(outcome.outputs, reference, checked.labels)
            if outcome.passed:
                os.replace(job.folder / fmt.file, staging / fmt.file)
                meta.formats[name] = format_entry(fmt, precision)
                parity = outcome.parity
                figures = (
                    f"max abs diff {parity.max_abs_diff:.2g}, top-1 agreement {parity.top1_agreement:.0%}"
                    if parity
                    else ""
                )
                detail = f"{outcome.note} ({figures})" if outcome.note and figures else outcome.note or figures
                log(f"{name}: ok, {precision} ({request.out / fmt.file}; {detail}; {seconds:.1f} s)")
            else:  # the bundle never ships a file that failed: it stays in the format's subfolder, removed below
                all_ok = False
                if outcome.reason.startswith("conversion failed: "):
                    first = outcome.reason.removeprefix("conversion failed: ").strip().splitlines() or ["?"]
                    log(f"{name}: FAILED to convert: {first[0]} - no {fmt.file} written")
                else:
                    log(f"{name}: FAILED parity: {outcome.reason} - no {fmt.file} written")
            remove(job.folder)
        report["formats"] = {name: records[name] for name in request.formats}  # in the order asked
        meta.formats = {name: meta.formats[name] for name in request.formats if name in meta.formats}
        report["wall_s"] = round(time.perf_counter() - started, 1)
        report["machine"] = {"platform": platform.platform(), "torch": str(torch.__version__)}
        if meta.formats:
            write_text_atomically(staging / SIDECAR, meta.to_json())
        write_text_atomically(staging / REPORT, json.dumps(report, indent=2, default=str) + "\n")
        publish(staging, request.out)
    except OSError as exc:
        raise ExportError(
            f"could not write the bundle ({exc.strerror or exc}); the previous content of {request.out} is untouched"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return all_ok, report
