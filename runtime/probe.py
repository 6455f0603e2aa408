"""Open and run a model file once in a child process: a runtime that crashes on a file (a segfault in a
delegate) takes the child down, not the caller.

Measured here: LiteRT's XNNPACK delegate crashes (signal 11, or "failed to create XNNPACK runtime") on the static
int8 TFLite file of ShuffleNetV2 x0.5 ``sen``; nothing in Python can catch a segfault in the same process.
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
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return " ".join((lines[-1] if lines else f"exit status {done.returncode}").split())[:300]
