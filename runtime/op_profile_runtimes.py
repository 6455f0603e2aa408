"""Run the runtimes' own profilers over model files, with the one timing protocol (no torch here).

ONNX Runtime: ``SessionOptions.enable_profiling`` writes a JSON trace with one event per node run and one
``model_run`` event per run. Every model is opened twice, with and without the profiler, and all sessions are
timed interleaved (``deepsquare.runtime.timing``: rotated order, sessions re-created per block), so the profile
of a model and of its baseline come from the same rounds, and the profiler's own cost is measured beside them.

LiteRT: the Python API of ai-edge-litert (2.3.0) has no per-op profiler: ``profiling_info_pb2`` (``OpProfileData``)
ships as a schema only, no call of ``Interpreter`` or ``CompiledModel`` returns it. Per-op times of a ``.tflite``
come from TFLite's ``benchmark_model --enable_op_profiling`` (``deepsquare profile android --op-profiling``).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .op_profile import OpMap, OpProfileError, RuntimeProfile, attribute, median, parse_ort_trace, run_coverage
from .quiet import quiet
from .timing import TimingPlan, time_interleaved

LITERT_NOTE = (
    "LiteRT: the Python API of ai-edge-litert has no per-op profiler (profiling_info_pb2 ships without a call that "
    "fills it); per-op times of a .tflite come from benchmark_model --enable_op_profiling on a device: "
    "deepsquare profile android MODEL --op-profiling"
)


@dataclass
class ProfileTarget:
    """One model file to profile, and its label in the tables."""

    label: str
    path: Path
    input_size: int


class _OrtSession:
    """One ONNX Runtime session of the runner's settings, profiled or not; ``__call__`` runs one image."""

    def __init__(self, path: Path, threads: int, profile_dir: Path | None, size: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as deepsquare bench
        if profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_dir / "ort")
        start = time.perf_counter()
        with quiet():
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.init_s = time.perf_counter() - start
        self.profiled = profile_dir is not None
        self.feed = {i.name: example_input(i.type, i.shape, size) for i in self.session.get_inputs()}
        self.walls: list[float] = []

    def __call__(self) -> None:
        start = time.perf_counter()
        self.session.run(None, self.feed)
        self.walls.append((time.perf_counter() - start) * 1e3)

    def trace(self) -> list[dict]:
        return json.loads(Path(self.session.end_profiling()).read_text(encoding="utf-8"))


def example_input(onnx_type: str, shape: list, size: int) -> np.ndarray:
    """One random image for an ONNX input: batch 1, the model's own layout and type (float or uint8 pixels)."""
    dims = [d if isinstance(d, int) and d > 0 else 1 for d in shape]
    if len(dims) == 4 and not all(isinstance(d, int) for d in shape[1:]):
        dims = [1, 3, size, size]
    rng = np.random.default_rng(0)
    if "uint8" in onnx_type:
        return rng.integers(0, 256, dims, dtype=np.uint8)
    return rng.standard_normal(dims).astype(np.float32)


def profile_onnxruntime(targets: list[ProfileTarget], threads: int, plan: TimingPlan) -> list[RuntimeProfile]:
    """Profile each ONNX file, all interleaved with each other and with their unprofiled sessions."""
    maps = [OpMap.load(t.path) for t in targets]
    sessions: list[list[_OrtSession]] = [[] for _ in range(2 * len(targets))]
    with tempfile.TemporaryDirectory(prefix="deepsquare-profile-") as tmp:

        def opener(i: int):
            target, profiled = targets[i // 2], i % 2 == 0

            def open_session():
                session = _OrtSession(target.path, threads, Path(tmp) if profiled else None, target.input_size)
                sessions[i].append(session)
                return session, session.init_s

            return open_session

        timing = time_interleaved([opener(i) for i in range(2 * len(targets))], plan)
        profiles = []
        for t, (target, op_map) in enumerate(zip(targets, maps, strict=True)):
            runs, whole, walls = [], [], []
            for session in sessions[2 * t]:
                per_run, model_runs = parse_ort_trace(session.trace(), skip_runs=plan.warmup)
                runs += per_run
                whole += model_runs
                walls += session.walls[plan.warmup :]
            if not runs:
                raise OpProfileError(f"ONNX Runtime recorded no run of {target.path.name}")
            profiles.append(
                RuntimeProfile(
                    runtime="onnxruntime",
                    model=target.label,
                    file=str(target.path),
                    ops=attribute(runs, op_map),
                    whole_ms=median(whole) or 0.0,
                    wall_ms=median(walls),
                    plain_ms=median(timing.times_ms[2 * t + 1]),
                    runs=len(runs),
                    threads=threads,
                    notes=ort_notes(),
                    run_coverage=run_coverage(runs, whole),
                    whole_min_ms=min(whole),
                )
            )
    return profiles


def ort_notes() -> list[str]:
    return [
        "whole-model time: ONNX Runtime's own model_run event of the same runs (the per-op sum leaves out the "
        "executor's work between kernels and the copy of inputs and outputs)",
        "layout reorders: NCHWc ReorderInput/ReorderOutput nodes ONNX Runtime inserts around its blocked "
        "convolutions; each is counted in the unit of the op it feeds (ReorderInput) or follows (ReorderOutput)",
    ]
