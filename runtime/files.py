"""The one atomic file writer of the package, and a file-size helper (no torch here: train imports it too).

A file is written to a temporary sibling, flushed to disk, then renamed over the target: a reader (the
apps, a second process), or a run killed mid-write, sees the previous file or the new one, never half of
one, and a failed write (a full disk) leaves no temporary file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a temporary sibling of ``path``, fsync it, rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the apps and other users read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """Replace ``path`` whole with ``text`` (UTF-8)."""
    return write_atomically(path, lambda f: f.write(text.encode()))


def copy_atomically(source: Path, target: Path) -> Path:
    """Replace ``target`` whole with a copy of ``source``."""
    with open(source, "rb") as src:
        return write_atomically(target, lambda f: shutil.copyfileobj(src, f))


def size_on_disk(path: Path) -> int:
    """Bytes of a model file, or of every file in a model folder (.mlpackage); 0 if it is missing."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.is_file() else 0
