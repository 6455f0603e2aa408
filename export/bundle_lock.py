"""One export at a time per ``--out``: a lock file beside the bundle (``.NAME.lock``) holding the holder's pid.

The lock is an ``flock`` on that file: the kernel releases it when its holder exits, however it exits, so a lock
file left by a killed export is simply taken over. A second export into the same ``--out`` refuses at once,
naming the pid that holds it, instead of cleaning up (deleting) the first one's live staging folder. Where
``flock`` is not available the pid alone decides: a lock whose pid no longer runs is stale and taken over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .publish import bundle_target
from .request import ExportError

try:
    import fcntl
except ImportError:  # not on Windows: the pid alone decides
    fcntl = None  # type: ignore[assignment]


class BundleLocked(ExportError):
    """Another export is writing the same --out."""


def lock_path(out: Path) -> Path:
    target = bundle_target(out)
    return target.parent / f".{target.name}.lock"


def _holder(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_lock(fd: int) -> bool:
    """True when this process now holds the lock on ``fd``."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:  # the filesystem has no flock (some network mounts): fall back to the pid
            pass
    holder = _holder(fd)
    return holder is None or holder == os.getpid() or not _alive(holder)


def _acquire(path: Path, out: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise BundleLocked(
                f"another export ({who}) is writing {out} (lock {path}); wait for it to finish or choose another --out"
            )
        try:  # the previous holder may have removed the file between our open and our lock: lock the one there now
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def bundle_lock(out: Path) -> Iterator[Path]:
    """Hold ``out``'s lock for the block; :class:`BundleLocked` at once when another export holds it."""
    path = lock_path(out)
    fd = _acquire(path, out)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
