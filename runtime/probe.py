"""Open and run a model file once in a child process: a runtime that crashes on a file (a segfault in a
delegate) takes the child down, not the caller.

Measured here: LiteRT's XNNPACK delegate crashed (signal 11, "double free", or "failed to create XNNPACK runtime")
on static int8 TFLite files of ShuffleNetV2 x0.5 ``se`` (a 1x1 convolution with one output channel: the SE squeeze of
a 24-channel block, export/quantize_tflite.py now keeps it float); nothing in Python can catch a segfault in the same
process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys
import numpy as np
from deepsquare.runtime.bundle import BundleMeta
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.runners import open_model
fmt_name, path, meta, threads, size = json.loads(sys.argv[1])
fmt = FORMATS[fmt_name]
meta = BundleMeta.from_dict(meta) if meta else None
runner = open_model(fmt, path, meta, threads)
entry = meta.formats.get(fmt_name) if meta is not None else None
if getattr(entry, "input_dtype", None) == "uint8" and hasattr(runner, "run_pixels"):
    runner.run_pixels(np.zeros((1, size, size, 3), np.uint8))
else:
    runner.run(np.zeros((1, 3, size, size), np.float32))
"""


def crash_reason(
    fmt: str, path: Path, meta: dict | None, threads: int, input_size: int, timeout_s: float = 300.0
) -> str | None:
    """None when the file opens and runs once in a child process; else why not, in one line."""
    payload = json.dumps([fmt, str(path), meta, threads, input_size])
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return f"it did not finish one run in {timeout_s:g} s"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return f"the runtime crashed ({name}) opening or running it"
    return " ".join(error_line(done.stderr, done.returncode).split())[:300]


def error_line(stderr: str, returncode: int) -> str:
    """The line of a failed child's stderr that says why: the last error, not a runtime's log lines after it
    (LiteRT logs "DestroyAccelerator" lines as it exits)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "ERROR" in line]
    logs = ("INFO:", "WARNING:", "VERBOSE:")
    others = [line for line in lines if not line.lstrip().startswith(logs)]
    chosen = errors or others or lines
    return chosen[-1] if chosen else f"exit status {returncode}"
