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
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .benchmark_model import BenchmarkOutputError, parse_benchmark_output
from .records import BenchRecord, dump_records, record_from_times

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


def profile_android(model: Path, binary: Path, threads: int, use_gpu: bool, use_xnnpack: bool,
                    serial: str | None, runs: int) -> BenchRecord:  # fmt: skip
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
    output = adb("shell", f"{DEVICE_DIR}/benchmark_model", f"--graph={DEVICE_DIR}/{model.name}",
                 f"--num_threads={threads}", f"--use_gpu={str(use_gpu).lower()}",
                 f"--use_xnnpack={str(use_xnnpack).lower()}", f"--num_runs={runs}", serial=serial)  # fmt: skip
    model_name = adb("shell", "getprop", "ro.product.model", serial=serial).strip()
    record = parse_benchmark_output(output).record(model=model.name, variant=_variant_of(model),
                                                   machine=f"{model_name} ({serial})")  # fmt: skip
    record.threads = threads
    record.extra.update({"use_gpu": use_gpu, "use_xnnpack": use_xnnpack})
    return record


def profile_coreml(package: Path, compute_units: str, runs: int) -> BenchRecord:
    if platform.system() != "Darwin":
        raise ProfileError(f"Core ML timing needs macOS (coremltools cannot predict on {platform.system()})")
    import coremltools as ct
    import numpy as np
    from PIL import Image

    start = time.perf_counter()
    model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, compute_units))
    init_ms = (time.perf_counter() - start) * 1e3
    size = model.get_spec().description.input[0].type.imageType.width
    image = Image.fromarray(np.zeros((size, size, 3), np.uint8))
    times = []
    for i in range(runs + 5):
        start = time.perf_counter()
        model.predict({"image": image})
        if i >= 5:
            times.append((time.perf_counter() - start) * 1e3)
    return record_from_times(times, model=package.name, variant=_variant_of(package), runtime="coreml", threads=None,
                             warmup=5, init_ms=init_ms, extra={"compute_units": compute_units,
                             "median_check": statistics.median(times)})  # fmt: skip


def _variant_of(model: Path) -> str:
    sidecar = model.parent / "model.json"
    if sidecar.is_file():
        return json.loads(sidecar.read_text()).get("variant", "unknown")
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepsquare-profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
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
    ios.add_argument("--compute-units", default="ALL", choices=["CPU_ONLY", "CPU_AND_GPU", "ALL"])
    ios.add_argument("--runs", type=int, default=50)
    parse = sub.add_parser("parse", parents=[common], help="turn a saved benchmark_model output into a record")
    parse.add_argument("output", type=Path)
    parse.add_argument("--model", default="model.tflite")
    parse.add_argument("--variant", default="unknown")
    parse.add_argument("--machine", default="device")
    args = parser.parse_args(argv)
    try:
        if args.target == "android":
            record = profile_android(args.model, args.benchmark_binary, args.threads, args.gpu, not args.no_xnnpack,
                                     args.serial, args.runs)  # fmt: skip
        elif args.target == "ios":
            record = profile_coreml(args.model, args.compute_units, args.runs)
        else:
            if not args.output.is_file():
                raise ProfileError(f"{args.output} does not exist")
            record = parse_benchmark_output(args.output.read_text()).record(
                model=args.model, variant=args.variant, machine=args.machine)  # fmt: skip
    except (ProfileError, BenchmarkOutputError, subprocess.TimeoutExpired) as exc:
        print(f"deepsquare-profile: {exc}", file=sys.stderr)
        return 1
    if args.json:
        existing = json.loads(args.json.read_text()) if args.json.is_file() else []
        records = [BenchRecord.from_dict(r) for r in existing] + [record]
        args.json.write_text(dump_records(records))
    print(json.dumps(record.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
