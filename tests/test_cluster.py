"""deepsquare ablate --cluster: refusals in a second, and a Ray sweep that trains what the local sweep trains.

The slow tests start a Ray head on 127.0.0.1 (``--cluster local``, two CPUs, stopped at the end of each sweep).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

TINY = [
    "--arch",
    "vanilla_cnn",
    "--variant",
    "gap,sp",
    "--data",
    "digits",
    "--seeds",
    "2",
    "--epochs",
    "1",
    "--input-size",
    "16",
    "--batch-size",
    "64",
    "--jobs",
    "2",
]


def ablate(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepsquare.export.commands", "ablate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused(args: list[str], hide_ray: bool, cwd: Path) -> subprocess.CompletedProcess:
    """``deepsquare ablate ARGS`` in a fresh interpreter that then checks neither torch nor ray was imported."""
    code = (
        "import sys\n"
        + ("sys.modules['ray'] = None  # as if ray were not installed\n" if hide_ray else "")
        + "from deepsquare.export.commands import main\n"
        "try:\n"
        f"    code = main({args!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported before the flags were checked'\n"
        "assert sys.modules.get('ray') is None, 'ray was imported'\n"
        "print('exit', code)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "ray:/x"], "--cluster 'ray:/x': give auto, local, ray://HOST:PORT or HOST:PORT"),
        (["--cluster", "local", "--cpus-per-run", "0"], "--cpus-per-run must be >= 1"),
        (["--cluster", "local", "--retries", "-1"], "--retries >= 0"),
        (["--gpus-per-run", "1"], "--gpus-per-run needs --cluster"),
        (["--retries=3"], "--retries needs --cluster"),
    ],
)
def test_bad_cluster_flags_are_refused_before_torch_or_ray(args: list[str], message: str, tmp_path: Path) -> None:
    result = refused(["ablate", "--out", "out", *args], hide_ray=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exit 2" in result.stdout and message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_without_ray_the_cluster_flag_says_how_to_install_it(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = refused(["ablate", "--out", "out", "--cluster", "auto"], hide_ray=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "exit 1" in result.stdout and "pip install 'deepsquare[cluster]'" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert time.perf_counter() - started < 30  # no training, no torch: (loosely) the time to start Python


def test_the_progress_line_names_the_run_and_the_time_left(capsys: pytest.CaptureFixture[str]) -> None:
    from deepsquare.train.cluster import Progress, duration

    progress = Progress(total=8, to_train=4, quiet=False)
    progress.started -= 30.0  # as if the first run took 30 s
    progress.done("run 3/8 vanilla_cnn/sp seed 0", {"split": "test", "top1": 91.234, "train_s": 29.6})
    line = capsys.readouterr().err.strip()
    assert line.startswith("run 3/8 vanilla_cnn/sp seed 0: test top-1 91.23% (30 s); 1 of 4 to train done, about ")
    assert line.endswith(" left") and duration(95) == "2 min" and duration(7200) == "2.0 h"


def runs_of(out: Path) -> dict[str, Path]:
    return {str(p.relative_to(out)): p for p in sorted(out.glob("runs/*/seed*"))}


def assert_same_runs(local: Path, cluster: Path) -> None:
    """Every run's weights and metrics identical (the speed columns aside)."""
    from deepsquare.train.checkpoint import Checkpoint

    mine, theirs = runs_of(local), runs_of(cluster)
    assert sorted(mine) == sorted(theirs) and len(mine) == 4
    for name, folder in mine.items():
        a, b = Checkpoint.load(folder / "model.ckpt"), Checkpoint.load(theirs[name] / "model.ckpt")
        assert a.state_dict.keys() == b.state_dict.keys()
        for key, tensor in a.state_dict.items():
            assert tensor.equal(b.state_dict[key]), f"{name}: {key} differs"
        rows = [list(csv.DictReader((f / "metrics.csv").open())) for f in (folder, theirs[name])]
        for row in rows:
            for r in row:
                r.pop("images_per_s"), r.pop("epoch_s")
        assert rows[0] == rows[1], name


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    result = ablate(*TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_a_ray_sweep_trains_what_the_local_sweep_trains(local_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "ray"
    result = ablate(*TINY, "--cluster", "local", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert_same_runs(local_sweep, out)
    assert (out / "ablation.md").read_text() == (local_sweep / "ablation.md").read_text()
    assert (out / "sweep.json").read_text() == (local_sweep / "sweep.json").read_text()
    lines = [line for line in result.stderr.splitlines() if line.startswith("run ")]
    assert len(lines) == 4 and {line.split()[1] for line in lines} == {"1/4", "2/4", "3/4", "4/4"}
    assert lines[-1].endswith("4 of 4 to train done, all trained") and "about" in lines[0]
    assert "Token authentication" not in result.stderr and "Ray" not in result.stdout  # Ray kept quiet
    # resumed on the cluster: nothing to train, no Ray started, the same report
    again = ablate(*TINY, "--cluster", "local", "--out", str(out), timeout=120)
    assert again.returncode == 0 and "ablate on Ray" not in again.stderr, again.stderr
    assert (out / "ablation.md").read_text() == (local_sweep / "ablation.md").read_text()


def held_lock(out: Path) -> tuple[Path, int] | None:
    """A run being trained (its lock held, no metrics yet): (its folder, the pid holding the lock). The lock is
    looked up in /proc/locks, never taken: a probe that took it would make the worker skip its run."""
    held = {
        line.split()[5].rsplit(":", 1)[-1] for line in Path("/proc/locks").read_text().splitlines() if "FLOCK" in line
    }
    for lock in out.glob("runs/*/seed*/train.lock"):
        if (lock.parent / "metrics.csv").exists() or str(lock.stat().st_ino) not in held:
            continue
        pid = lock.read_text().strip()
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            return lock.parent, int(pid)
    return None


def alive(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_is_retried_and_nothing_is_lost_or_doubled(
    local_sweep: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    cmd = [sys.executable, "-m", "deepsquare.export.commands", "ablate", *TINY, "--cluster", "local"]
    sweep = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, found = time.monotonic() + 300, None
        while found is None and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.2)
            found = held_lock(out)
        assert found is not None, "no run was seen training"
        folder, pid = found
        assert pid != sweep.pid  # the lock is held by the Ray worker that runs the task, not by the sweep
        trainers = [c for f in Path(f"/proc/{pid}/task").glob("*/children") for c in f.read_text().split()]
        os.kill(pid, signal.SIGKILL)
        gone = time.monotonic() + 60
        while any(alive(child) for child in trainers) and time.monotonic() < gone:
            time.sleep(0.2)
        assert not any(alive(child) for child in trainers), "the run's trainer outlived its worker"
        stdout, stderr = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 0, stderr
    record = json.loads((folder / "result.json").read_text())
    name = f"{record['name']} seed {record['seed']}"
    assert f"{name}: its worker died; retry 1 of 2" in stderr
    assert f"{name}: retried 1 time(s) after its worker died" in stderr
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert sorted((r["name"], r["seed"]) for r in rows) == sorted(
        (r["name"], r["seed"]) for r in csv.DictReader((local_sweep / "ablation.csv").open())
    )
    assert_same_runs(local_sweep, out)  # the killed run trained again from its start: the same weights
    assert (out / "ablation.md").read_text() == (local_sweep / "ablation.md").read_text()
    assert "report:" in stdout


HEAD = """
import os, sys
os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # loopback only
import ray
ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, object_store_memory=80 * 1024**2, _temp_dir=sys.argv[1],
         configure_logging=False, log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes stdin
ray.shutdown()
"""


@pytest.mark.slow
def test_a_sweep_joins_a_running_cluster_by_its_address(local_sweep: Path, tmp_path: Path) -> None:
    temp = tempfile.mkdtemp(prefix="ds-head-")  # short: Ray's socket paths are limited
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD, temp], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    out = tmp_path / "joined"
    try:
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        env = {**os.environ, "RAY_AUTH_MODE": "token"}  # the head made a token (~/.ray/auth_token): present it
        cmd = [sys.executable, "-m", "deepsquare.export.commands", "ablate", *TINY, "--cluster", address]
        result = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=120)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert_same_runs(local_sweep, out)
    assert (out / "ablation.md").read_text() == (local_sweep / "ablation.md").read_text()
    assert f"ablate on Ray ({address}): 4 of 4 runs to train" in result.stderr
