"""``deepsquare profile android|ios|parse``: latency on a device, in the same records as the local benchmark.

Examples:
  deepsquare profile android model.tflite --benchmark-binary ./benchmark_model --threads 4 --out runs/phone
  deepsquare profile ios model.mlpackage --out runs/mac          # macOS: Core ML through coremltools
  deepsquare profile parse output.txt --model m.tflite           # a saved benchmark_model output

Android: pushes the model and TFLite's ``benchmark_model`` binary (give its path: it cannot
be downloaded here) with adb, runs it, and parses its output into a record
(``runtime=tflite-benchmark_model``). Without adb or without a device it says which is missing.
Records print as JSON; with --out they are also added to OUT/records.json, which
``deepsquare bench --add-records OUT/records.json`` shows beside the local table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .benchmark_model import BenchmarkOutputError, parse_benchmark_output
from .files import write_text_atomically
from .op_profile_tflite import op_table_lines, parse_op_profiling, summarize
from .options import add_out, add_rounds, add_threads, add_verbosity, one_value
from .records import BenchRecord, dump_records, record_from_times
from .timing import TimingPlan, time_interleaved

DEVICE_DIR = "/data/local/tmp/deepsquare"


class ProfileError(RuntimeError):
    """A missing tool, device or file; the message says which."""


def adb(*args: str, serial: str | None = None, timeout: int = 600) -> str:
    command = ["adb", *(["-s", serial] if serial else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ProfileError(f"{' '.join(command)} failed: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def attached_devices() -> list[str]:
    if shutil.which("adb") is None:
        raise ProfileError("adb is not installed (Debian: apt-get install adb; or Android platform-tools)")
    lines = adb("devices").splitlines()[1:]
    return [line.split()[0] for line in lines if line.strip().endswith("device")]


def profile_android(
    model: Path,
    binary: Path,
    *,
    threads: int,
    use_gpu: bool,
    use_xnnpack: bool,
    op_profiling: bool = False,
    serial: str | None,
    runs: int,
    warmup: int,
) -> BenchRecord:
    devices = attached_devices()
    if not devices:
        raise ProfileError("no Android device attached (adb devices lists none); connect one with USB debugging on")
    if serial is None:
        if len(devices) > 1:
            raise ProfileError(f"several devices attached ({', '.join(devices)}); choose one with --serial")
        serial = devices[0]
    for path, what in ((model, "model"), (binary, "benchmark_model binary")):
        if not path.is_file():
            raise ProfileError(f"{what} {path} does not exist")
    adb("shell", "mkdir", "-p", DEVICE_DIR, serial=serial)
    adb("push", str(model), f"{DEVICE_DIR}/{model.name}", serial=serial)
    adb("push", str(binary), f"{DEVICE_DIR}/benchmark_model", serial=serial)
    adb("shell", "chmod", "+x", f"{DEVICE_DIR}/benchmark_model", serial=serial)
    output = adb(
        "shell",
        f"{DEVICE_DIR}/benchmark_model",
        f"--graph={DEVICE_DIR}/{model.name}",
        f"--num_threads={threads}",
        f"--use_gpu={str(use_gpu).lower()}",
        f"--use_xnnpack={str(use_xnnpack).lower()}",
        f"--num_runs={runs}",
        f"--warmup_runs={warmup}",
        f"--enable_op_profiling={str(op_profiling).lower()}",
        serial=serial,
    )
    model_name = adb("shell", "getprop", "ro.product.model", serial=serial).strip()
    record = parse_benchmark_output(output).record(
        model=model.name, variant=_variant_of(model), machine=f"{model_name} ({serial})"
    )
    record.threads = threads
    record.extra.update({"use_gpu": use_gpu, "use_xnnpack": use_xnnpack})
    add_op_profile(record, output)
    return record


COMPUTE_UNITS = ("CPU_ONLY", "CPU_AND_GPU", "ALL")


def parse_compute_units(text: str) -> list[str]:
    units = [u.strip().upper() for u in text.split(",") if u.strip()]
    bad = [u for u in units if u not in COMPUTE_UNITS]
    if bad or not units:
        raise ProfileError(f"unknown compute unit(s) {bad}; valid: {', '.join(COMPUTE_UNITS)}")
    return units


def profile_coreml(package: Path, compute_units: list[str], runs: int, warmup: int = 5) -> list[BenchRecord]:
    """Time one .mlpackage under each compute-unit setting with the protocol of deepsquare bench."""
    if platform.system() != "Darwin":
        raise ProfileError(f"Core ML timing needs macOS (coremltools cannot predict on {platform.system()})")
    if not package.exists():
        raise ProfileError(f"model {package} does not exist")
    import coremltools as ct
    import numpy as np
    from PIL import Image

    first = ct.models.MLModel(str(package), compute_units=ct.ComputeUnit.CPU_ONLY)
    image_type = first.get_spec().description.input[0].type.imageType
    image = Image.fromarray(np.zeros((image_type.height, image_type.width, 3), np.uint8))
    del first

    def opener(unit: str):
        def open_model():
            start = time.perf_counter()
            model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, unit))
            return (lambda: model.predict({"image": image})), time.perf_counter() - start

        return open_model

    timing = time_interleaved([opener(u) for u in compute_units], TimingPlan(runs=runs, warmup=warmup))
    times, init_ms = timing.times_ms, timing.init_ms
    machine = f"{platform.node()} (macOS {platform.mac_ver()[0]}, {platform.machine()})"
    return [
        record_from_times(
            t,
            model=package.name,
            variant=_variant_of(package),
            runtime="coreml",
            threads=None,
            warmup=warmup,
            init_ms=ms,
            machine=machine,
            extra={"compute_units": unit},
        )
        for unit, t, ms in zip(compute_units, times, init_ms, strict=True)
    ]


def _variant_of(model: Path) -> str:
    sidecar = model.parent / "model.json"
    if sidecar.is_file():
        return json.loads(sidecar.read_text()).get("variant", "unknown")
    return "unknown"


RECORDS = "records.json"  # in --out: the JSON list of records the profile commands add to

ANDROID_DOC = """``deepsquare profile android MODEL``: TFLite's benchmark_model on an attached Android device (adb).

Example:
  deepsquare profile android runs/sq/export/model.tflite --benchmark-binary ./benchmark_model --threads 4

The binary is built for the phone's ABI from TensorFlow's sources or taken from its nightly builds (nothing
is downloaded here). Records go to stdout and, with --out, to OUT/records.json.
"""

IOS_DOC = """``deepsquare profile ios MODEL``: a .mlpackage timed through Core ML on this Mac (macOS only).

Example:
  deepsquare profile ios runs/sq/export/model.mlpackage --compute-units CPU_ONLY,ALL --out runs/mac
"""

PARSE_DOC = """``deepsquare profile parse OUTPUT``: a saved benchmark_model output -> a benchmark record.

Example:
  deepsquare profile parse phone-log.txt --model model.tflite --variant sp+sex --out runs/phone
"""


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_out(parser, default=None, help="also add the records to OUT/records.json")
    add_verbosity(parser)


def add_android_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="a .tflite file (of a bundle)")
    parser.add_argument(
        "--benchmark-binary", type=Path, required=True, help="TFLite's benchmark_model built for the device"
    )
    add_threads(parser, help="--num_threads of benchmark_model")
    parser.add_argument("--gpu", action="store_true", help="--use_gpu=true")
    parser.add_argument("--no-xnnpack", action="store_true", help="--use_xnnpack=false")
    parser.add_argument(
        "--op-profiling", action="store_true", help="--enable_op_profiling=true: per-op times in the record"
    )
    parser.add_argument("--serial", help="adb serial when several devices are attached")
    add_rounds(parser)
    _add_common(parser)


def add_ios_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="a .mlpackage (of a bundle)")
    parser.add_argument(
        "--compute-units",
        default=",".join(COMPUTE_UNITS),
        help=f"comma-separated, timed interleaved (default {','.join(COMPUTE_UNITS)})",
    )
    add_rounds(parser)
    _add_common(parser)


def add_parse_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, metavar="OUTPUT", help="a text log of benchmark_model")
    parser.add_argument("--model", default="model.tflite", help="the model file name the log is of")
    parser.add_argument("--variant", default="unknown", help="its variant")
    parser.add_argument("--machine", default="device", help="the device it ran on")
    _add_common(parser)


def run_android(args: argparse.Namespace) -> int:
    threads = one_value("--threads", args.threads)
    return _finish(
        args,
        lambda: [
            profile_android(
                args.model,
                args.benchmark_binary,
                threads=threads,
                use_gpu=args.gpu,
                use_xnnpack=not args.no_xnnpack,
                op_profiling=args.op_profiling,
                serial=args.serial,
                runs=args.runs,
                warmup=args.warmup,
            )
        ],
    )


def run_ios(args: argparse.Namespace) -> int:
    return _finish(
        args, lambda: profile_coreml(args.model, parse_compute_units(args.compute_units), args.runs, args.warmup)
    )


def run_parse(args: argparse.Namespace) -> int:
    def measure() -> list[BenchRecord]:
        text = read_output(args.output)
        record = parse_benchmark_output(text).record(model=args.model, variant=args.variant, machine=args.machine)
        return [add_op_profile(record, text)]

    return _finish(args, measure)


def add_op_profile(record: BenchRecord, output: str) -> BenchRecord:
    """Keep the op-profiling table of a benchmark_model output (if it has one) in ``record.extra["op_profile"]``
    and print its summary to stderr (stdout stays the records' JSON)."""
    rows = parse_op_profiling(output)
    if rows:
        summary = summarize(rows)
        record.extra["op_profile"] = summary
        print("\n".join(op_table_lines(summary)), file=sys.stderr)
    return record


def _finish(args: argparse.Namespace, measure) -> int:
    """Check the flags, measure, add the records to OUT/records.json, print them."""
    try:
        check_arguments(args)
        records = measure()
        if args.out is not None:
            append_records(args.out / RECORDS, records)
    except (ProfileError, BenchmarkOutputError, subprocess.TimeoutExpired) as exc:
        print(f"deepsquare profile: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps([r.to_dict() for r in records] if len(records) > 1 else records[0].to_dict(), indent=2))
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse what would fail after minutes of profiling, before any of it."""
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ProfileError(f"--out {args.out} is a file; give a folder (the records go to OUT/{RECORDS})")
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProfileError(f"cannot create --out {args.out}: {exc.strerror or exc}") from exc
    if getattr(args, "runs", 1) < 1 or getattr(args, "warmup", 0) < 0:
        raise ProfileError(f"--runs must be >= 1 and --warmup >= 0, got {args.runs} and {args.warmup}")
    for threads in getattr(args, "threads", [1]):
        if not 1 <= threads <= 256:
            raise ProfileError(f"--threads must be in 1..256, got {threads}")


def read_output(path: Path) -> str:
    if not path.is_file():
        raise ProfileError(f"{path} {'is not a file' if path.exists() else 'does not exist'}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path} is not a text log of benchmark_model (binary data at byte {exc.start})") from exc
    if "\x00" in text:
        raise ProfileError(f"{path} is not a text log of benchmark_model (it holds NUL bytes)")
    return text


def append_records(path: Path, records: list[BenchRecord]) -> None:
    """Add records to a JSON list of records; the file is replaced whole, never half-written."""
    existing: list[BenchRecord] = []
    if path.is_dir():
        raise ProfileError(f"{path} is a folder; give a file name (a JSON list of records)")
    if path.is_file():
        try:
            existing = [BenchRecord.from_dict(r) for r in json.loads(path.read_bytes().decode("utf-8"))]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"{path} is not a JSON list of benchmark records ({exc}); not touching it") from exc
    write_text_atomically(path, dump_records(existing + records))
