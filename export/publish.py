"""Publishing a bundle: a reader of ``--out`` sees the previous complete bundle or the new one, never a mix.

The new bundle is built whole in a staging folder beside ``--out`` (``.NAME.staging-*``), then
swapped with ``--out`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames,
with the previous bundle kept as ``.NAME.previous-*`` until the second one is done). When ``--out``
is the current folder (``--out .``) the files are replaced one by one instead, ``model.json`` last. Files of
the previous bundle that the new one does not list (another model's ``model.tflite``, a format
that failed this time) do not survive the swap; anything else in ``--out`` (a user's own
files) is carried over untouched. Leftovers of a killed run are cleaned by the next one: a
staging folder is removed, and a previous bundle whose swap never finished is put back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import tempfile
from pathlib import Path

from deepsquare.runtime.bundle import SIDECAR
from deepsquare.runtime.formats import FORMATS

REPORT = "export_report.json"
RENAME_EXCHANGE = 2  # linux/fs.h


def bundle_file_names() -> set[str]:
    """The names a deepsquare bundle consists of: everything else in --out is the user's."""
    return {fmt.file for fmt in FORMATS.values()} | {SIDECAR, REPORT}


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.staging-"


def _previous_prefix(out: Path) -> str:
    return f".{out.name}.previous-"


def recover(out: Path) -> list[str]:
    """Clean what a killed export left beside ``out``; return what was done, for the log."""
    out = out.absolute()  # "--out ." stages beside the folder, not inside it
    done = []
    parent = out.parent
    if not parent.is_dir():
        return done
    previous = sorted(parent.glob(_previous_prefix(out) + "*"))
    if previous and not out.exists():
        os.replace(previous[-1], out)  # the swap was cut between its two renames: the old bundle returns
        done.append(f"restored the previous bundle from {previous[-1].name}")
        previous = previous[:-1]
    for leftover in [*parent.glob(_staging_prefix(out) + "*"), *previous]:
        shutil.rmtree(leftover, ignore_errors=True)
        done.append(f"removed {leftover.name} left by an interrupted export")
    return done


def new_staging(out: Path) -> Path:
    out = out.absolute()
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out)))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux >= 3.15); False where the call does not exist."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem cannot; fall back
        return False
    raise OSError(errno, os.strerror(errno), str(a))


def _holds_cwd(out: Path) -> bool:
    """A shell sitting in --out would be left in a deleted folder by a swap: there, files are replaced instead."""
    cwd = Path.cwd().resolve()
    return cwd == out.resolve() or out.resolve() in cwd.parents


def _replace_file_by_file(staging: Path, out: Path, ours: set[str]) -> None:
    """The fallback: model.json goes first and comes back last, so a reader finds no bundle for a moment,
    never a model.json that lists files of another bundle."""
    (out / SIDECAR).unlink(missing_ok=True)
    for name in ours - {SIDECAR}:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        if (staging / name).exists():
            os.replace(staging / name, target)
    if (staging / SIDECAR).exists():
        os.replace(staging / SIDECAR, out / SIDECAR)
    shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, out: Path) -> None:
    """Make ``staging`` (a complete bundle) the content of ``out``; the user's own files come along."""
    out = out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(staging, stat.S_IMODE(out.stat().st_mode))  # mkdtemp made it private; --out keeps its permissions
    ours = bundle_file_names()
    for entry in out.iterdir():
        if entry.name in ours or (staging / entry.name).exists():
            continue
        if entry.name.startswith((".staging-", ".write-test-")):  # leftovers of older deepsquare versions
            continue
        if entry.is_file() and not entry.is_symlink():
            try:
                os.link(entry, staging / entry.name)  # in both folders until the swap: readers keep seeing it
            except OSError:
                shutil.copy2(entry, staging / entry.name)
        else:  # a folder or a link of the user's: moved over
            os.replace(entry, staging / entry.name)
    if _holds_cwd(out):
        _replace_file_by_file(staging, out, ours)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous bundle
        return
    previous = Path(tempfile.mkdtemp(dir=out.parent, prefix=_previous_prefix(out)))
    previous.rmdir()
    os.replace(out, previous)
    os.replace(staging, out)
    shutil.rmtree(previous, ignore_errors=True)
