"""``deepsquare-profile``: latency on a device, in the same records as the local benchmark.

  deepsquare-profile android model.tflite --benchmark-binary ./benchmark_model [--threads 4] [--gpu]
  deepsquare-profile ios model.mlpackage            # macOS: Core ML through coremltools
  deepsquare-profile parse output.txt --model m.tflite   # a saved benchmark_model output

Android: pushes the model and TFLite's ``benchmark_model`` binary (give its path: it cannot
be downloaded here) with adb, runs it, and parses its output into a record
(``runtime=tflite-benchmark_model``). Without adb or without a device it says which is missing.
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
    model: Path, binary: Path, threads: int, use_gpu: bool, use_xnnpack: bool, serial: str | None, runs: int
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
        serial=serial,
    )
    model_name = adb("shell", "getprop", "ro.product.model", serial=serial).strip()
    record = parse_benchmark_output(output).record(
        model=model.name, variant=_variant_of(model), machine=f"{model_name} ({serial})"
    )
    record.threads = threads
    record.extra.update({"use_gpu": use_gpu, "use_xnnpack": use_xnnpack})
    return record


COMPUTE_UNITS = ("CPU_ONLY", "CPU_AND_GPU", "ALL")


def parse_compute_units(text: str) -> list[str]:
    units = [u.strip().upper() for u in text.split(",") if u.strip()]
    bad = [u for u in units if u not in COMPUTE_UNITS]
    if bad or not units:
        raise ProfileError(f"unknown compute unit(s) {bad}; valid: {', '.join(COMPUTE_UNITS)}")
    return units


def profile_coreml(package: Path, compute_units: list[str], runs: int, warmup: int = 5) -> list[BenchRecord]:
    """Time one .mlpackage under each compute-unit setting with the protocol of deepsquare-bench."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepsquare-profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", type=Path, help="also append the record to this JSON list")
    sub = parser.add_subparsers(dest="target", required=True)
    android = sub.add_parser("android", parents=[common], help="run TFLite's benchmark_model on an attached device")
    android.add_argument("model", type=Path)
    android.add_argument("--benchmark-binary", type=Path, required=True, help="benchmark_model built for the device")
    android.add_argument("--threads", type=int, default=4)
    android.add_argument("--gpu", action="store_true", help="--use_gpu=true")
    android.add_argument("--no-xnnpack", action="store_true", help="--use_xnnpack=false")
    android.add_argument("--serial", help="adb serial when several devices are attached")
    android.add_argument("--runs", type=int, default=50)
    ios = sub.add_parser("ios", parents=[common], help="time a .mlpackage through Core ML (macOS)")
    ios.add_argument("model", type=Path)
    ios.add_argument(
        "--compute-units",
        default=",".join(COMPUTE_UNITS),
        help=f"comma-separated, timed interleaved (default {','.join(COMPUTE_UNITS)})",
    )
    ios.add_argument("--runs", type=int, default=50)
    parse = sub.add_parser("parse", parents=[common], help="turn a saved benchmark_model output into a record")
    parse.add_argument("output", type=Path)
    parse.add_argument("--model", default="model.tflite")
    parse.add_argument("--variant", default="unknown")
    parse.add_argument("--machine", default="device")
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
        if args.target == "android":
            records = [
                profile_android(
                    args.model,
                    args.benchmark_binary,
                    args.threads,
                    args.gpu,
                    not args.no_xnnpack,
                    args.serial,
                    args.runs,
                )
            ]
        elif args.target == "ios":
            records = profile_coreml(args.model, parse_compute_units(args.compute_units), args.runs)
        else:
            records = [
                parse_benchmark_output(read_output(args.output)).record(
                    model=args.model, variant=args.variant, machine=args.machine
                )
            ]
        if args.json:
            append_records(args.json, records)
    except (ProfileError, BenchmarkOutputError, subprocess.TimeoutExpired) as exc:
        print(f"deepsquare-profile: {exc}", file=sys.stderr)
        return 1
    print(json.dumps([r.to_dict() for r in records] if len(records) > 1 else records[0].to_dict(), indent=2))
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse what would fail after minutes of profiling, before any of it."""
    if args.json is not None and args.json.is_dir():
        raise ProfileError(f"--json {args.json} is a folder; give a file name (a JSON list of records)")
    if args.json is not None and not args.json.parent.is_dir():
        raise ProfileError(f"--json {args.json}: the folder {args.json.parent} does not exist")
    if getattr(args, "runs", 1) < 1:
        raise ProfileError(f"--runs must be >= 1, got {args.runs}")
    if getattr(args, "threads", 1) < 1 or getattr(args, "threads", 1) > 256:
        raise ProfileError(f"--threads must be in 1..256, got {args.threads}")


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
        raise ProfileError(f"--json {path} is a folder; give a file name (a JSON list of records)")
    if path.is_file():
        try:
            existing = [BenchRecord.from_dict(r) for r in json.loads(path.read_bytes().decode("utf-8"))]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"{path} is not a JSON list of benchmark records ({exc}); not touching it") from exc
    write_text_atomically(path, dump_records(existing + records))


if __name__ == "__main__":
    sys.exit(main())
