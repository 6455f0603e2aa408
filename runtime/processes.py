"""Child processes that never outlive deepsquare, and SIGTERM / Ctrl+C that stop a command cleanly.

Every process deepsquare starts (an export's converter workers, an ablation's trainers, the web bench's browser
driver) dies with the process that started it, however that one ends:

- **SIGKILL, a crash, the OOM killer** (the parent runs no code): on Linux each child asks the kernel for
  ``PR_SET_PDEATHSIG`` = SIGKILL (``prctl`` through ctypes), so the kernel kills it when its parent goes. A child
  started by :func:`start` gets it from a tiny Python wrapper that calls ``prctl`` and then ``exec``-s the real
  program (the setting survives ``exec``; ``preexec_fn`` would do the same but is unsafe in a threaded parent, and
  the ablation starts its trainers from threads). A ``ProcessPoolExecutor`` worker calls :func:`die_with_parent`
  from its initializer. Both then compare ``os.getppid()`` with the parent's pid: a parent that died before
  ``prctl`` ran cannot trigger it any more, so the child exits at once instead. The death signal follows the
  parent *thread* that started the child: start children from a thread that outlives them (the main thread, or
  a pool thread that waits for its child, as here).
- **SIGTERM, SIGINT** (the parent runs its handler): :func:`stopping_on_signals` turns both into :class:`Stopped`
  (a ``KeyboardInterrupt``), so ``finally`` blocks and ``except KeyboardInterrupt`` clean-ups run (the export's
  staging folder is removed). The handler first sends SIGTERM to every child registered with :func:`track`
  (and SIGKILL after a grace period), and :func:`start` refuses new children from then on, so that a pool
  waiting for its running jobs returns promptly.

Why not a process group killed on exit: killing the group needs the parent to run code, which SIGKILL forbids;
and a child in its own group no longer sees the terminal's Ctrl+C. Elsewhere than Linux there is no
``PR_SET_PDEATHSIG``: pool workers then watch their parent's pid from a thread, other children are unprotected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

LINUX = sys.platform.startswith("linux")
PR_SET_PDEATHSIG = 1
GRACE_S = 5.0  # after SIGTERM, a tracked child that is still running gets SIGKILL

# Runs as `python -I -S -c WRAPPER PARENT_PID PROGRAM ARGS...`: stdlib only, exec keeps the pid.
WRAPPER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
os.execvp(sys.argv[2], sys.argv[2:])
"""


class Killable(Protocol):
    """subprocess.Popen and multiprocessing.Process both are."""

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived: raised in the main thread by the handler of :func:`stopping_on_signals`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal killed: 130, 143


_lock = threading.RLock()
_live: set[Killable] = set()
_stopped: list[int] = []  # the signal that stopped this process, once one did


def die_with_parent(parent: int) -> None:
    """In a child: die when ``parent`` dies (SIGKILL from the kernel on Linux, a watching thread elsewhere)."""
    if LINUX:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="deepsquare-parent-watch").start()
    if os.getppid() != parent:  # the parent was gone before prctl: nothing will signal us
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        threading.Event().wait(1.0)
    os._exit(1)


def reaped(command: list[str]) -> list[str]:
    """``command`` wrapped so that, on Linux, its process is killed when this one dies (same pid: it execs)."""
    if not LINUX or not sys.executable:
        return list(command)
    return [sys.executable, "-I", "-S", "-c", WRAPPER, str(os.getpid()), *command]


def track(child: Killable) -> None:
    """Stop ``child`` with this process: SIGTERM when a signal stops it (then SIGKILL); see :func:`forget`."""
    with _lock:
        _live.add(child)


def forget(child: Killable) -> None:
    with _lock:
        _live.discard(child)


def start(command: list[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(command, **popen)``, the child reaped with this process and tracked; refused (Stopped)
    once a signal stopped this process. Call :func:`forget` after waiting for it (or use :func:`child`)."""
    with _lock:
        if _stopped:
            raise Stopped(_stopped[0])
        proc = subprocess.Popen(reaped(command), **popen)
        _live.add(proc)
    return proc


@contextmanager
def child(command: list[str], **popen: Any) -> Iterator[subprocess.Popen]:
    """:func:`start` as a context manager: a child still running when the block ends (an error, Ctrl+C) is
    killed, then waited for."""
    proc = start(command, **popen)
    with proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            forget(proc)


def run(command: list[str], **popen: Any) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(command, capture_output=True, text=True, **popen)``, through :func:`child`."""
    with child(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen) as proc:
        out, err = proc.communicate()
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def stop_children(force: bool = False, only: list[Killable] | None = None) -> None:
    """SIGTERM (``force``: SIGKILL) to every tracked child (or to those in ``only``)."""
    with _lock:
        children = list(_live) if only is None else list(only)
    for proc in children:
        try:
            if force:
                proc.kill()
            else:
                proc.terminate()
        except (OSError, ValueError, AttributeError):  # already gone, or a Process never started / closed
            pass


def _on_signal(signum: int, frame: object) -> None:
    with _lock:
        first = not _stopped
        if first:
            _stopped.append(signum)
    if first:
        stop_children()
        timer = threading.Timer(GRACE_S, stop_children, kwargs={"force": True})
        timer.daemon = True
        timer.start()
    raise Stopped(signum)


class Stop:
    """What :func:`stopping_on_signals` yields: the signal that stopped the command, if one did."""

    def __init__(self) -> None:
        self.ended_by: int | None = None  # set when the block ends

    @property
    def signum(self) -> int | None:
        return _stopped[0] if _stopped else self.ended_by

    def exit_status(self, code: int) -> int:
        """``code``, except that a command which turned the stop into its own 130 exits 128 + the signal."""
        return 128 + self.signum if self.signum is not None and code == 130 else code


@contextmanager
def stopping_on_signals() -> Iterator[Stop]:
    """SIGTERM and SIGINT raise :class:`Stopped` in the main thread while the block runs (elsewhere: nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield Stop()
        return
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    stop = Stop()
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        with _lock:
            stop.ended_by = _stopped[0] if _stopped else None
            _stopped.clear()
        if stop.ended_by is not None:
            stop_children(force=True)


@contextmanager
def children_ignore_sigint() -> Iterator[None]:
    """Children started in the block (from the main thread) ignore SIGINT: the terminal's Ctrl+C reaches the whole
    process group, and a Python worker would print its own KeyboardInterrupt traceback; the parent stops them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited through exec, unlike a handler
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
