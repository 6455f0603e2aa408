"""No orphaned processes: a parallel export, an ablation sweep and any child started through
``deepsquare.runtime.processes`` die with their parent (SIGKILL included); SIGTERM and Ctrl+C stop a command with
one line, its exit status (143, 130) and a clean staging folder; a run another live sweep trains is not trained.

Each command runs in its own session, so that its processes stay findable after its death (re-parented, they keep
the session); a helper kills whatever is left in that session, so that a failing test leaves nothing behind."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from export_helpers import write_checkpoint

from deepsquare.runtime import processes
from deepsquare.train import ablate

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG")

COMMAND = [sys.executable, "-m", "deepsquare.export.commands"]


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, session) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[3])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def living() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))) is not None and info[0] not in "ZX":
            found[int(entry.name)] = info
    return found


def descendants(pid: int) -> list[int]:
    table, found, frontier = living(), [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (_, ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def in_session(session: int) -> list[int]:
    """The live (not zombie) processes of a session, its leader included."""
    return [pid for pid, (_, _, sid) in living().items() if sid == session]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def own_session(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """The command in its own session (its pid = the session id), output in ``log``; every process left in the
    session is SIGKILL-ed at the end, whatever the test did."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    try:
        yield proc
    finally:
        for pid in in_session(proc.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def assert_session_dies(proc: subprocess.Popen, timeout: float = 10) -> None:
    try:
        wait_until(lambda: not in_session(proc.pid), timeout, "the command's processes to die")
    except AssertionError:
        left = {pid: cmdline(pid)[:120] for pid in in_session(proc.pid)}
        raise AssertionError(f"processes outlived their parent: {left}") from None


def export_command(tmp_path: Path) -> tuple[list[str], Path]:
    ckpt = write_checkpoint(tmp_path, "vanilla_cnn", "gap")
    out = tmp_path / "bundle"
    return [*COMMAND, "export", str(ckpt), "--to", "onnx,tflite", "--jobs", "2", "--out", str(out)], out


def converter_workers(pid: int) -> list[int]:
    return [p for p in descendants(pid) if "spawn_main" in cmdline(p)]


# --- the child-process helper alone (fast) ---


def test_a_started_child_dies_with_its_sigkilled_parent(tmp_path: Path) -> None:
    parent = textwrap.dedent(
        """
        import time
        from deepsquare.runtime import processes
        child = processes.start(["sleep", "120"])
        print(child.pid, flush=True)
        time.sleep(120)
        """
    )
    with own_session([sys.executable, "-c", parent], tmp_path / "log") as proc:
        text = wait_until(lambda: (tmp_path / "log").read_text().strip(), 30, "the child's pid")
        child = int(text.split()[0])
        assert "sleep 120" in cmdline(child)  # the wrapper exec-ed the program: same pid, no extra process
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert_session_dies(proc, timeout=5)


def test_a_child_whose_parent_is_already_gone_exits_before_running() -> None:
    command = processes.reaped([sys.executable, "-c", "print('ran')"])
    command[command.index(str(os.getpid()))] = "1"  # as if the parent had died before prctl: re-parented
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "ran" not in result.stdout


def test_the_wrapper_restores_sigpipe_for_the_program() -> None:
    result = processes.run(["sh", "-c", "yes | head -1"])
    assert result.returncode == 0 and result.stdout == "y\n" and result.stderr == ""


def test_a_stopped_process_starts_no_new_child() -> None:
    with processes.stopping_on_signals() as stop:
        with pytest.raises(processes.Stopped) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        assert raised.value.exit_status == 143
        with pytest.raises(processes.Stopped):
            processes.start(["true"])
    assert stop.signum == signal.SIGTERM and stop.exit_status(130) == 143 and stop.exit_status(1) == 1
    processes.run(["true"])  # the next command may start children again


# --- a parallel export ---


@pytest.mark.slow
def test_sigkill_of_a_parallel_export_leaves_no_converter(tmp_path: Path) -> None:
    command, _ = export_command(tmp_path)
    with own_session(command, tmp_path / "log") as proc:
        wait_until(lambda: len(converter_workers(proc.pid)) == 2, 120, "two converter workers")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert_session_dies(proc)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl+C"])
def test_sigterm_or_ctrl_c_stops_an_export_with_one_line_and_no_leftovers(tmp_path: Path, how: str) -> None:
    command, out = export_command(tmp_path)
    with own_session(command, tmp_path / "log") as proc:
        # ONNX done: one worker idle (waiting for work), the other in the middle of the TFLite conversion
        wait_until(lambda: "onnx: " in (tmp_path / "log").read_text(), 180, "the ONNX outcome")
        if proc.poll() is not None:  # a machine fast enough to convert TFLite in the meantime
            pytest.skip("the export finished before it could be stopped")
        if how == "SIGTERM":
            os.kill(proc.pid, signal.SIGTERM)
        else:  # a terminal's Ctrl+C: SIGINT to the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == (143 if how == "SIGTERM" else 130)
        assert_session_dies(proc)
    log = (tmp_path / "log").read_text()
    name = "SIGTERM" if how == "SIGTERM" else "SIGINT"
    assert log.strip().splitlines()[-1] == f"deepsquare export: interrupted ({name})", log  # the last line, once
    assert log.count("interrupted") == 1 and "Traceback" not in log and "Warning" not in log, log
    assert not list(tmp_path.glob(f".{out.name}.staging-*"))
    assert not out.exists() or not list(out.iterdir())  # no bundle (export makes --out before converting)


# --- an ablation sweep ---


def sweep_command(out: Path, epochs: int = 2000) -> list[str]:
    """Runs that train for minutes here unless killed (at 50 epochs a run of this size is over in seconds)."""
    return [
        *COMMAND,
        "ablate",
        "--quiet",
        *("--arch", "vanilla_cnn", "--variant", "gap,sp", "--data", "synthetic:64", "--seeds", "2"),
        *("--epochs", str(epochs), "--input-size", "16", "--jobs", "1", "--out", str(out)),
    ]


def trainers(pid: int) -> list[int]:
    return [p for p in descendants(pid) if "deepsquare.train" in cmdline(p)]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_stopped_sweep_leaves_no_trainer(tmp_path: Path, sig: signal.Signals) -> None:
    with own_session(sweep_command(tmp_path / "sweep"), tmp_path / "log") as proc:
        wait_until(lambda: trainers(proc.pid), 120, "the first trainer")
        os.kill(proc.pid, sig)
        code = proc.wait(timeout=30)
        assert_session_dies(proc, timeout=5)
    if sig == signal.SIGTERM:
        log = (tmp_path / "log").read_text()
        assert code == 143 and log.count("deepsquare ablate: interrupted (SIGTERM)") == 1, log
        assert "Traceback" not in log, log


def hold_lock(folder: Path, log: Path) -> list[str]:
    script = f"""
import time
from pathlib import Path
from deepsquare.train.ablate import run_lock
with run_lock(Path({str(folder)!r})):
    print("locked", flush=True)
    time.sleep(120)
"""
    return [sys.executable, "-c", script]


def test_a_run_locked_by_a_live_process_is_not_trained(tmp_path: Path) -> None:
    run = ablate.Run("vanilla_cnn", "gap", "none", 5, 0)
    args = argparse.Namespace(out=tmp_path / "sweep")
    folder = run.folder(args.out)
    with own_session(hold_lock(folder, tmp_path / "log"), tmp_path / "log") as holder:
        wait_until(lambda: "locked" in (tmp_path / "log").read_text(), 60, "the other process to take the lock")
        with pytest.raises(ablate.RunBusy, match=f"being trained by pid {holder.pid}"):
            ablate.execute(run, args)  # would start a trainer (and fail on the bare args) if it got the lock
        assert not (folder / "metrics.csv").exists()
    with ablate.run_lock(folder):  # the holder is gone: the kernel released its lock
        pass


@pytest.mark.slow
def test_a_resumed_sweep_skips_the_run_another_sweep_trains(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    first = ablate.Run("vanilla_cnn", "gap", "none", 5, 0).folder(out)
    with own_session(hold_lock(first, tmp_path / "holder"), tmp_path / "holder") as holder:
        wait_until(lambda: "locked" in (tmp_path / "holder").read_text(), 60, "the other process to take the lock")
        result = subprocess.run(sweep_command(out, epochs=1), capture_output=True, text=True, timeout=600)
        assert result.returncode == 1, result.stderr
        assert f"being trained by pid {holder.pid}" in result.stderr
        assert not (first / "result.json").exists()
        assert len(list(out.glob("runs/*/seed*/result.json"))) == 3  # the other runs were trained


@pytest.mark.slow
def test_sigterm_stops_a_trainer_with_one_line_and_143(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "deepsquare.train", "--quiet", "--arch", "vanilla_cnn", "--variant", "gap"]
    command += ["--data", "synthetic:64", "--epochs", "2000", "--input-size", "16", "--out", str(tmp_path / "run")]
    with own_session(command, tmp_path / "log") as proc:
        wait_until(lambda: (tmp_path / "run" / "metrics.csv").is_file(), 120, "the first epoch")
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert_session_dies(proc, timeout=5)
    log = (tmp_path / "log").read_text()
    assert log.count("deepsquare train: interrupted") == 1 and "Traceback" not in log, log
