"""``deepsquare ablate --cluster``: each run of the sweep a Ray task, written into the shared ``--out``.

The grid, the recipe check, the per-run lock, the resume and the report are the local sweep's
(``deepsquare.train.ablate``): a Ray worker calls the same ``execute`` the local sweep's threads call, so a run
writes the same files (``OUT/runs/<name>/seed<k>/``) wherever it trains, and a finished run (its
``result.json``) is never submitted again. What changes is where runs train and what happens when one's worker
dies: the task is submitted again (at most ``--retries`` times), each retry said on its own line and listed at
the end. Ray is imported only here, and only once ``--cluster`` is given (``pip install 'deepsquare[cluster]'``).

``--cluster local`` starts a Ray head on this machine, bound to 127.0.0.1, with ``--jobs`` x ``--cpus-per-run``
CPUs (``--jobs 0``: the machine's cores), and stops it at the end; ``auto`` joins the cluster this machine is a
node of (``ray start``); ``ray://HOST:PORT`` (Ray Client) or ``HOST:PORT`` (the head's address) join a remote
one. Ray is kept quiet: no dashboard, no usage statistics, the workers' output shown only with ``-v``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from deepsquare.runtime.options import UsageError, jobs_or_cores

from .ablate import Run, execute, finished

INSTALL = "pip install 'deepsquare[cluster]'"
ADDRESS = re.compile(r"^(auto|local|ray://[^\s:/]+(:\d+)?|[^\s:/]+:\d+)$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # a head on this machine, bound to the loopback interface
REACH_S = 10.0
CLUSTER_FLAGS = ("--cpus-per-run", "--gpus-per-run", "--retries")
OBJECT_STORE = 80 * 1024**2  # a local head's shared memory: runs pass only small records (Ray's minimum is 75 MiB)


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="train the runs as Ray tasks: auto (this node's cluster), ray://HOST:PORT, HOST:PORT, or local "
        f"(a Ray head on 127.0.0.1, stopped at the end); needs {INSTALL}",
    )
    p.add_argument("--cpus-per-run", type=int, default=1, help="with --cluster: CPUs (and torch threads) per run")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="with --cluster: GPUs per run (0.5 shares one)")
    p.add_argument("--retries", type=int, default=2, help="with --cluster: times a run whose worker died is retried")


def check_cluster(args: argparse.Namespace) -> None:
    """The cluster flags, refused in a second (UsageError), before torch or Ray is imported; ValueError when
    Ray is not installed."""
    given = [flag for flag in CLUSTER_FLAGS if any(a == flag or a.startswith(flag + "=") for a in args.given)]
    if args.cluster is None:
        if given:
            raise UsageError(f"{given[0]} needs --cluster")
        return
    if not ADDRESS.match(args.cluster):
        raise UsageError(
            f"--cluster {args.cluster!r}: give auto, local, ray://HOST:PORT or HOST:PORT (the Ray head's address)"
        )
    if args.cpus_per_run < 1 or args.gpus_per_run < 0 or args.retries < 0:
        raise UsageError(
            "--cpus-per-run must be >= 1, --gpus-per-run >= 0, --retries >= 0; "
            f"got {args.cpus_per_run}, {args.gpus_per_run}, {args.retries}"
        )
    if importlib.util.find_spec("ray") is None:
        raise ValueError(f"--cluster needs Ray, which is not installed; install it with: {INSTALL}")


def worker_args(args: argparse.Namespace) -> argparse.Namespace:
    """What a worker needs to train a run, with the paths made absolute (a worker runs in its own folder, on
    another node perhaps: ``--out`` and an image folder must be paths every node sees)."""
    data = args.data
    if data.startswith("imagefolder:"):
        data = f"imagefolder:{Path(data.partition(':')[2]).expanduser().resolve()}"
    keep = ("epochs", "dropout", "batch_size", "input_size", "lr", "vary", "diagnostics")
    return argparse.Namespace(out=Path(args.out).resolve(), data=data, **{k: getattr(args, k) for k in keep})


def train_one(run: Run, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """The Ray task: the local sweep's ``execute``, in a Ray worker (which holds the run's lock)."""
    return execute(run, args, threads)


@contextmanager
def quiet_ray(local: bool, verbose: bool) -> Iterator[None]:
    """Environment and logging for a quiet Ray, put back afterwards. ``local``: every address Ray binds and
    advertises is the loopback one (Ray's own switch for a single-machine cluster, read when ray is imported)."""
    wanted = {"RAY_USAGE_STATS_ENABLED": "0"}
    if local:
        wanted["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    import ray  # noqa: F401  (after the environment: ray reads some of it on import, and sets its loggers' levels)

    logger = logging.getLogger("ray")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def connected(args: argparse.Namespace) -> Iterator[Any]:
    """``ray`` connected to the cluster of ``--cluster`` (a local head started, and stopped at the end). A head
    named by a loopback address (one started with ``--cluster local``-like settings) is reached on loopback."""
    local = args.cluster == "local"
    host, port = address_of(args.cluster)
    if host is not None:
        reachable(host, port, args.cluster)
    with quiet_ray(local or host in LOOPBACK, args.verbose):
        import ray
        from ray._private import ray_constants

        cluster_switch, temp = ray_constants.ENABLE_RAY_CLUSTER, None
        settings: dict[str, Any] = {"log_to_driver": args.verbose}
        if local or host in LOOPBACK:
            ray_constants.ENABLE_RAY_CLUSTER = False  # loopback only, even when ray was imported before
        if local:
            settings["include_dashboard"] = False
            cpus = args.jobs * args.cpus_per_run if args.jobs > 0 else max(jobs_or_cores(0), args.cpus_per_run)
            temp = tempfile.mkdtemp(prefix="deepsquare-ray-")  # the head's sockets and logs; kept with -v
            settings.update(num_cpus=cpus, object_store_memory=OBJECT_STORE, _temp_dir=temp)
            if args.gpus_per_run == 0:
                settings["num_gpus"] = 0
        else:
            settings["address"] = args.cluster
        try:
            ray.init(configure_logging=False, **settings)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ... for one cause
            ray_constants.ENABLE_RAY_CLUSTER = cluster_switch
            remove(temp, args.verbose)
            where = "start a local Ray head" if local else f"reach the Ray cluster at {args.cluster}"
            hint = "; start one with `ray start --head`, or use --cluster local" if args.cluster == "auto" else ""
            if not local:
                hint += " (a cluster with token authentication: set RAY_AUTH_MODE=token and its token)"
            raise ValueError(f"cannot {where}: {str(exc).split('. Please')[0]}{hint}") from None
        try:
            yield ray
        finally:
            ray.shutdown()
            ray_constants.ENABLE_RAY_CLUSTER = cluster_switch
            remove(temp, args.verbose)


def remove(temp: str | None, verbose: bool) -> None:
    if temp is None:
        return
    if verbose:
        print(f"deepsquare ablate: the local Ray head's logs are in {temp}", file=sys.stderr)
    else:
        shutil.rmtree(temp, ignore_errors=True)


def address_of(cluster: str) -> tuple[str | None, int]:
    """(host, port) of a ``HOST:PORT`` or ``ray://HOST[:PORT]`` address; (None, 0) for auto and local."""
    if cluster in ("auto", "local"):
        return None, 0
    client = cluster.startswith("ray://")
    host, _, port = cluster.removeprefix("ray://").partition(":")
    return host, int(port) if port else 10001 if client else 6379


def reachable(host: str, port: int, cluster: str) -> None:
    """Refuse an address nothing listens on in seconds (Ray would wait for it, deaf to Ctrl+C)."""
    try:
        with socket.create_connection((host, port), timeout=REACH_S):
            pass
    except OSError as exc:
        raise ValueError(f"cannot reach the Ray cluster at {cluster}: {exc.strerror or exc}") from None


class Progress:
    """One line per finished run (its place in the grid, the time left), per retry, per failure."""

    def __init__(self, total: int, to_train: int, quiet: bool) -> None:
        self.total, self.to_train, self.quiet = total, to_train, quiet
        self.trained = 0
        self.started = time.perf_counter()

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def done(self, place: str, record: dict[str, Any]) -> None:
        self.trained += 1
        left = self.to_train - self.trained
        rate = (time.perf_counter() - self.started) / self.trained
        eta = f"about {duration(rate * left)} left" if left else "all trained"
        self.say(
            f"{place}: {record.get('split', 'test')} top-1 {record['top1']:.2f}% ({record.get('train_s', 0):.0f} s); "
            f"{self.trained} of {self.to_train} to train done, {eta}"
        )


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def crashes(ray: Any) -> tuple[type[BaseException], ...]:
    """The errors that mean the run's worker (or its node) died, not that its training failed."""
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError")
    return tuple(getattr(ray.exceptions, name) for name in names if hasattr(ray.exceptions, name))


def sweep(runs: list[Run], args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run not finished yet as a Ray task; (results of every run, failures), retries reported."""
    place = {run: f"run {i}/{len(runs)} {run.name} seed {run.seed}" for i, run in enumerate(runs, 1)}
    results, todo = [], deque()
    for run in runs:
        record = finished(run.folder(args.out) / "result.json")
        if record is None:
            todo.append(run)
        else:
            results.append(record)
    if not todo:
        return results, []
    failures: list[str] = []
    retried: Counter[Run] = Counter()
    with connected(args) as ray:
        progress = Progress(len(runs), len(todo), args.quiet)
        progress.say(f"ablate on Ray ({args.cluster}): {len(todo)} of {len(runs)} runs to train, {len(results)} done")
        task = ray.remote(num_cpus=args.cpus_per_run, num_gpus=args.gpus_per_run, max_retries=0)(train_one)
        spec, cap = worker_args(args), args.jobs if args.jobs > 0 else len(todo)  # Ray queues what does not fit
        pending: dict[Any, Run] = {}
        try:
            while todo or pending:
                while todo and len(pending) < cap:
                    run = todo.popleft()
                    pending[task.remote(run, spec, args.cpus_per_run)] = run
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    run = pending.pop(ref)
                    outcome = collect(ray, ref, place[run], retried[run], args.retries)
                    if outcome is None:
                        retried[run] += 1
                        progress.say(f"{place[run]}: its worker died; retry {retried[run]} of {args.retries}")
                        todo.appendleft(run)
                    elif isinstance(outcome, str):
                        failures.append(outcome)
                    else:
                        results.append(outcome)
                        progress.done(place[run], outcome)
        finally:
            for ref in pending:  # interrupted: stop the runs still training (the trainers die with their workers)
                with suppress(Exception):  # finished meanwhile, or the cluster is gone: nothing left to stop
                    ray.cancel(ref, force=True)
    for run, times in retried.items():
        print(f"deepsquare ablate: {place[run]}: retried {times} time(s) after its worker died", file=sys.stderr)
    return results, failures


def collect(ray: Any, ref: Any, place: str, tries: int, retries: int) -> dict[str, Any] | str | None:
    """The run's record; None when its worker died and a retry is left; else the failure's message."""
    try:
        return ray.get(ref)
    except crashes(ray) as exc:
        if tries < retries:
            return None
        return f"{place} failed: its worker died {tries + 1} time(s), the last: {type(exc).__name__}"
    except ray.exceptions.RayTaskError as exc:  # execute's RuntimeError or RunBusy, raised in the worker
        cause = getattr(exc, "cause", None)
        return str(cause) if cause is not None else f"{place} failed: {exc}"
