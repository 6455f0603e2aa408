"""Converter and runtime chatter, hidden for one call and put back exactly as it was (no torch here).

Converters and runtimes print from Python (warnings, loggers, tqdm bars) and from C++ (TensorFlow
Lite's "Created XNNPACK delegate", Core ML's "Failed to load _MLModelProxy", ExecuTorch's cpuinfo
notes), so hiding it
takes the file descriptors, not just ``sys.stdout``. Nothing process-wide is left changed:
warning filters come back through ``catch_warnings``, logger levels are restored, and the
descriptors are swapped back. What was hidden is kept, so a failure can show its tail.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

# Set by the command line only (export/commands.py main): a native runtime's shutdown chatter (LiteRT's
# "DestroyAccelerator" lines, written by C++ statics after every Python hook) may then be silenced at exit. A library
# caller's stderr is never redirected.
SILENCE_NATIVE_EXIT = False

# Loggers the converters write notes to at INFO/WARNING level.
CHATTY_LOGGERS = ("absl", "coremltools", "torch.onnx", "torch.export", "onnxscript", "litert_torch", "tensorflow")


@dataclass
class Captured:
    text: str = ""

    def tail(self, lines: int = 8) -> str:
        return "\n".join(self.text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def _fds_to(file) -> Iterator[None]:
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


@contextlib.contextmanager
def quiet(verbose: bool = False) -> Iterator[Captured]:
    """Hide everything a conversion prints unless ``verbose``; yields what was hidden (after the block)."""
    captured = Captured()
    if verbose:
        yield captured
        return
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    with tempfile.TemporaryFile(mode="w+") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            with _fds_to(sink), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                yield captured
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            sink.flush()
            sink.seek(0)
            captured.text = sink.read()
