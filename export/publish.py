"""Publishing a bundle: a reader of ``--out`` sees the previous complete bundle or the new one, never a mix.

The new bundle is built whole in a staging folder beside ``--out`` (``.NAME.staging-*``), then
swapped with ``--out`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames,
with the previous bundle kept as ``.NAME.previous-*`` until the second one is done). When ``--out``
is the current folder (``--out .``) the files are replaced one by one instead, ``model.json`` last. Files of
the previous bundle that the new one does not list (another model's ``model.tflite``, a format
that failed this time) do not survive the swap; anything else in ``--out`` (a user's own
files) is carried over untouched. Leftovers of a killed run are cleaned by the next one: a
staging folder is removed, and a previous bundle whose swap never finished is put back.

A bundle is published only when every format asked for passed: a failed export leaves ``--out`` as it was
and its report goes beside it (:func:`report_path`). A failure inside :func:`publish` itself (a full disk,
an exception) puts back whatever it had moved. ``--out`` given as a link to a folder is published into the
folder it points to; the link stays (:func:`bundle_target`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import tempfile
from pathlib import Path

from deepsquare.runtime.bundle import GOLDEN_FILE, SAMPLES_FILE, SIDECAR
from deepsquare.runtime.formats import FORMATS
from deepsquare.runtime.op_profile import op_map_path
from deepsquare.runtime.schema import BUNDLE_COPY

from .sensitivity_report import JSON_NAME as SENSITIVITY_JSON
from .sensitivity_report import MARKDOWN_NAME as SENSITIVITY_MD

REPORT = "export_report.json"
FAILED_REPORT_SUFFIX = ".failed-export_report.json"  # beside --out: the report of an export that was not published
RENAME_EXCHANGE = 2  # linux/fs.h


def bundle_target(out: Path) -> Path:
    """The folder a bundle is published into: ``out`` with every link resolved (a link given as --out stays a link,
    its target gets the bundle), absolute ("--out ." stages beside the folder, not inside it)."""
    return Path(os.path.realpath(out))


def holds_bundle(out: Path) -> bool:
    """Whether ``out`` has a file of a bundle (a model file or model.json), which a failed export must not touch."""
    target = bundle_target(out)
    return any(os.path.lexists(target / name) for name in bundle_file_names() - {REPORT})


def report_path(out: Path, published: bool) -> Path:
    """Where an export's report goes: in the bundle when it is published, or when --out holds no bundle to
    protect (a new or empty folder); else beside --out, named after it."""
    target = bundle_target(out)
    if published or not holds_bundle(target):
        return target / REPORT
    return target.parent / f"{target.name}{FAILED_REPORT_SUFFIX}"


def bundle_file_names() -> set[str]:
    """The names a deepsquare bundle consists of: everything else in --out is the user's."""
    op_maps = {op_map_path(Path(fmt.file)).name for fmt in FORMATS.values()}  # beside each file: its op map
    contract = {BUNDLE_COPY, GOLDEN_FILE, "golden.png", SAMPLES_FILE, "samples"}  # export/golden.py writes them
    layers = {"parity_layers.json", "parity_layers.md"}  # export/parity_layers.py (--parity-report)
    layers |= {name for fmt in FORMATS.values() for name in fmt.companions}  # model.ort's operator config
    layers |= {SENSITIVITY_JSON, SENSITIVITY_MD}  # export/sensitivity.py (--sensitivity)
    return {fmt.file for fmt in FORMATS.values()} | op_maps | contract | layers | {SIDECAR, REPORT}


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.staging-"


def _previous_prefix(out: Path) -> str:
    return f".{out.name}.previous-"


def recover(out: Path) -> list[str]:
    """Clean what a killed export left beside ``out``; return what was done, for the log."""
    out = bundle_target(out)
    done = []
    parent = out.parent
    if not parent.is_dir():
        return done
    previous = sorted(parent.glob(_previous_prefix(out) + "*"))
    if previous and not out.exists():
        os.replace(previous[-1], out)  # the swap was cut between its two renames: the old bundle returns
        done.append(f"restored the previous bundle from {previous[-1].name}")
        previous = previous[:-1]
    elif previous and not (out / SIDECAR).exists() and any(previous[-1].iterdir()):
        _put_back_files(previous[-1], out)  # a file-by-file replacement (--out .) was cut before model.json came
        done.append(f"restored the previous bundle's files from {previous[-1].name}")
    for leftover in [*parent.glob(_staging_prefix(out) + "*"), *previous]:
        shutil.rmtree(leftover, ignore_errors=True)
        done.append(f"removed {leftover.name} left by an interrupted export")
    return done


def _put_back_files(previous: Path, out: Path) -> None:
    kept = {entry.name for entry in previous.iterdir()}
    for name in bundle_file_names() - kept:  # files of the new bundle that the previous one did not have
        if os.path.lexists(out / name):
            _remove(out / name)
    for name in kept:
        if os.path.lexists(out / name):
            _remove(out / name)
        os.replace(previous / name, out / name)


def new_staging(out: Path) -> Path:
    out = bundle_target(out)
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
    never a model.json that lists files of another bundle. The previous files wait in a ``.NAME.previous-*``
    folder until the new ones are all in place; an exception on the way puts them back."""
    previous = Path(tempfile.mkdtemp(dir=out.parent, prefix=_previous_prefix(out)))
    moved: list[str] = []
    try:
        for name in [SIDECAR, *sorted(ours - {SIDECAR})]:
            if os.path.lexists(out / name):
                os.replace(out / name, previous / name)
                moved.append(name)
        for name in sorted(ours - {SIDECAR}):
            if os.path.lexists(staging / name):
                os.replace(staging / name, out / name)
        if (staging / SIDECAR).exists():
            os.replace(staging / SIDECAR, out / SIDECAR)
    except BaseException:
        for name in ours:  # the new files out, the previous ones back
            if os.path.lexists(out / name) and name not in moved:
                _remove(out / name)
        for name in moved:
            os.replace(previous / name, out / name)
        raise
    finally:
        shutil.rmtree(previous, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _carry_users_files(staging: Path, out: Path, moved: list[str]) -> None:
    """Bring the user's own files of ``out`` into ``staging``; ``moved`` gets the names moved (not linked) there."""
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
            moved.append(entry.name)


def publish(staging: Path, out: Path) -> None:
    """Make ``staging`` (a complete bundle) the content of ``out``; the user's own files come along.

    Until the swap, ``out`` is as it was: an exception on the way (a full disk) moves the user's folders back."""
    out = bundle_target(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(staging, stat.S_IMODE(out.stat().st_mode))  # mkdtemp made it private; --out keeps its permissions
    if _holds_cwd(out):  # the user's files stay where they are
        _replace_file_by_file(staging, out, bundle_file_names())
        return
    moved: list[str] = []
    try:
        _carry_users_files(staging, out, moved)
        _swap(staging, out)
    except BaseException:
        for name in moved:
            if os.path.lexists(staging / name) and not os.path.lexists(out / name):
                os.replace(staging / name, out / name)
        raise


def _swap(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out`` in one step where the OS can, else in two renames; the previous bundle goes."""
    if _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous bundle
        return
    previous = Path(tempfile.mkdtemp(dir=out.parent, prefix=_previous_prefix(out)))
    previous.rmdir()
    os.replace(out, previous)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(previous, out)
        raise
    shutil.rmtree(previous, ignore_errors=True)
