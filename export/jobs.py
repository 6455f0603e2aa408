"""One format's conversion and parity check as a job (:class:`ConvertJob`), and running a list of them: one after
another in this process, or at once in fresh worker processes, each job pickled whole to its worker."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deepsquare.runtime.bundle import BundleMeta, FormatEntry
from deepsquare.runtime.formats import FORMATS, Format
from deepsquare.runtime.processes import children_ignore_sigint, die_with_parent, forget, stop_children, track
from deepsquare.runtime.quiet import quiet

from . import convert_ort  # noqa: F401  (registers the ort converter)
from .converters import CONVERTERS
from .format_reports import ReportOptions, add_reports
from .needs import ConverterMissing
from .prologue import PIXEL_FORMATS, on_pixels
from .verify import RANDOM_SAMPLES, FormatOutcome, verify


def format_entry(fmt: Format, precision: str, input_kind: str = "float") -> FormatEntry:
    """``model.json``'s entry of a format; ``input_kind``: ``deepsquare export --input`` (uint8: the graph takes
    NHWC pixels, export/prologue.py)."""
    dtype = "image" if fmt.layout == "image" else "float32"  # Core ML's ImageType takes the picture itself
    layout = fmt.layout
    if input_kind == "uint8" and fmt.name in PIXEL_FORMATS:
        dtype, layout = "uint8", "NHWC"
    return FormatEntry(fmt.file, layout, fmt.input_name, fmt.output_name, precision, {"outputs": fmt.outputs}, dtype)


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
    reports: ReportOptions | None = None,
    keep_float: tuple[str, ...] = (),
) -> FormatOutcome:
    """Convert one format and check it; ``keep_float``: int8 only, module paths of ``deployed`` kept float."""
    entry = format_entry(fmt, precision, meta.input)
    meta_with_entry = BundleMeta(**{**meta.__dict__, "formats": {fmt.name: entry}})
    # --input uint8: the model with its prologue, fed the pixels of the same images (export/prologue.py)
    model, example, calibration = on_pixels(fmt.name, deployed.for_format(fmt.name), inputs[:2], calibration, meta)
    with quiet(verbose) as captured:
        try:
            info = CONVERTERS[fmt.name](
                model,
                example,
                staging,
                meta_with_entry,
                precision=precision,
                calibration=calibration,
                keep_float=keep_float if precision == "int8" else (),
            )
        except ConverterMissing:
            raise
        except Exception as exc:  # a converter failure is this format's failure, not the run's
            failure = exc
        else:
            failure = None
    if failure is not None:
        return FormatOutcome(False, f"conversion failed: {failure}", info={"converter_output": captured.tail()})
    if precision == "int8":  # export_report.json: what this int8 file keeps in float
        info.setdefault("keep_float", list(keep_float))
    # Quantized models are calibrated on real images: judge them on those alone.
    judged = slice(RANDOM_SAMPLES, None) if precision != "fp32" and has_real else slice(None)
    with quiet(verbose):
        outcome = verify(fmt, staging, meta_with_entry, deployed, inputs, reference, precision, info, judged)
    exported, images, _ = on_pixels(fmt.name, deployed.for_format(fmt.name), inputs, None, meta)  # as the file was
    add_reports(fmt, staging, exported, images, precision, outcome, reports or ReportOptions(), verbose)
    return outcome


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
    reports: ReportOptions | None = None  # --require-delegated, --parity-report
    keep_float: tuple[str, ...] = ()  # int8: module paths of ``deployed`` kept float (export/int8_units.py)


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
        job.reports,
        job.keep_float,
    )
    return outcome, time.perf_counter() - started


def share_cores(workers: int) -> None:
    """Worker initializer: the cores split between the workers, so that two converters do not fight for them."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def start_worker(workers: int, parent: int) -> None:
    """Worker initializer: dies with the export (even a SIGKILL-ed one), then shares the cores."""
    die_with_parent(parent)
    share_cores(workers)


def start_resource_tracker() -> None:
    """multiprocessing's resource tracker, started without its leak warning: a converter stopped mid-run (Ctrl+C,
    SIGTERM) leaves semaphores that the tracker removes, and its two-line warning about them is only noise."""
    from multiprocessing import resource_tracker

    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    sys.warnoptions.append(quiet)  # the tracker is started with this process's -W options
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.remove(quiet)


def run_pickled_job(payload: bytes) -> tuple[FormatOutcome, float]:
    return run_job(pickle.loads(payload))


def run_jobs(
    jobs: list[ConvertJob], workers: int, log: Callable[[str], None] = print
) -> Iterator[tuple[ConvertJob, FormatOutcome, float]]:
    """Each job with its outcome and seconds, as it finishes: here one after another, or in ``workers`` fresh
    processes (spawned: a forked copy of a process that already ran torch can deadlock in its thread pool). The
    converters are single-threaded for most of their run, so formats overlap well (docs: results/export.md).
    The workers die with this process, however it ends (``deepsquare.runtime.processes``)."""
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
    start_resource_tracker()
    start = (workers, os.getpid())
    with ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker, initargs=start) as pool:
        # The slowest converters start first, so that the last one to finish is a short one.
        order = sorted(range(len(jobs)), key=lambda i: -FORMATS[jobs[i].fmt].convert_weight)
        with children_ignore_sigint():  # the workers start here; Ctrl+C is the parent's to handle
            futures = {pool.submit(run_pickled_job, payloads[i]): jobs[i] for i in order}
        processes = list(pool._processes.values())  # 3.11 has no public handle on the workers
        for process in processes:
            track(process)  # SIGTERM / Ctrl+C of the export stops them at once
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
        except BaseException:  # Ctrl+C, SIGTERM, an abandoned generator: no converter keeps writing to staging
            stop_children(force=True, only=processes)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            for process in processes:
                forget(process)
