"""``deepsquare profile --to executorch``: ETDump events of ExecuTorch's Python runtime, mapped to modules through an
ETRecord and the devtools Inspector (torch: ExecuTorch's runtime and devtools need it).

What the runtime records (executorch 1.5.1, pip): an ``OPERATOR_CALL`` event per op run outside a delegate (with
its module hierarchy), one ``DELEGATE_CALL`` event per XNNPACK partition (with the modules of every op inside it),
the XNNPACK operators inside a partition as events named by XNNPACK's operator (``Convolution (NHWC, F32) GEMM
#1``) with no module, and ``Method::execute`` per run. So a partition's time goes to the deepest module holding
all its ops (a unit, when partitions stop at the channel shuffle), with the kind ``XNNPACK partition``; the
XNNPACK operators inside are reported by name in a note, not by module.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepsquare.runtime.op_profile import OpTime, RuntimeProfile, median, unit_of
from deepsquare.runtime.quiet import quiet
from deepsquare.runtime.timing import TimingPlan, time_interleaved

from .needs import need
from .op_map import _common_module, kind_of

PARTITION = "XNNPACK partition"


def lower_with_etrecord(model: nn.Module, input_size: int, folder: Path) -> tuple[Path, Path]:
    """The XNNPACK-lowered ``.pte`` of ``model`` (as the converter lowers it) and its ETRecord, in ``folder``."""
    need("executorch", "executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    folder.mkdir(parents=True, exist_ok=True)
    example = torch.randn(1, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with quiet():
        program = torch.export.export(model.eval(), (example,))
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()], generate_etrecord=True)
        final = lowered.to_executorch()
    pte, etrecord = folder / "model.pte", folder / "model.etrecord"
    pte.write_bytes(final.buffer)
    final.get_etrecord().save(str(etrecord))
    return pte, etrecord


class _Session:
    def __init__(self, pte: Path, input_size: int) -> None:
        import time

        from executorch.runtime import Runtime

        start = time.perf_counter()
        with quiet():
            self.program = Runtime.get().load_program(pte, enable_etdump=True, debug_buffer_size=0)
            self.method = self.program.load_method("forward")
        self.init_s = time.perf_counter() - start
        self.inputs = [torch.randn(1, 3, input_size, input_size)]

    def __call__(self) -> None:
        self.method.execute(self.inputs)


def _innermost(hierarchy: dict[str, Any]) -> list[str]:
    """The module path of each op of an Inspector event's module hierarchy."""
    return [list(scopes.values())[-1][0] for scopes in hierarchy.values() if scopes]


def events_of(etdump: Path, etrecord: Path, skip_runs: int) -> list[dict[str, Any]]:
    """The Inspector's events of one program: name, per-run ms (warm-up left out), op types, module paths."""
    from executorch.devtools import Inspector

    with quiet():
        frame = Inspector(etdump_path=str(etdump), etrecord=str(etrecord)).to_dataframe()
    return [
        {
            "name": row.event_name,
            "raw": list(row.raw)[skip_runs:],
            "ops": list(row.op_types or []),
            "modules": _innermost(row.module_hierarchy or {}),
            "delegated": bool(row.is_delegated_op),
        }
        for row in frame.itertuples()
    ]


def merge_runs(per_session: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events of one program's sessions (one per block: the same events in the same order), runs joined."""
    merged = [dict(event, raw=list(event["raw"])) for event in per_session[0]]
    for events in per_session[1:]:
        for event, other in zip(merged, events, strict=True):
            event["raw"] += other["raw"]
    return merged


def attribute_events(events: list[dict[str, Any]], model: nn.Module) -> tuple[list[OpTime], list[float], str]:
    """(ops, per-run whole-model ms, a note on what ran inside the partitions) of one program's events."""
    modules = dict(model.named_modules())
    stages = set(getattr(model, "stage_names", ()))
    ops: list[OpTime] = []
    inside: dict[str, float] = {}
    whole: list[float] = []
    for n, event in enumerate(events):
        ms = statistics.median(event["raw"]) if event["raw"] else 0.0
        if event["name"] == "Method::execute":
            whole = event["raw"]
        elif event["delegated"]:
            label = event["name"].split(" #")[0]
            inside[label] = inside.get(label, 0.0) + ms
        elif event["name"] in ("OPERATOR_CALL", "DELEGATE_CALL"):
            path = _common_module(event["modules"])
            unit = unit_of(path, 2 if path and path.split(".")[0] in stages else 1)
            op_type = event["ops"][0] if event["ops"] else "?"
            is_partition = event["name"] == "DELEGATE_CALL"
            kind = PARTITION if is_partition else kind_of(modules, path, op_type, False)
            note = f"{len(event['ops'])} ops inside" if is_partition else ""
            ops.append(OpTime(f"{event['name']}#{n}", op_type, path, unit, kind, ms, 1, note))
    top = sorted(inside.items(), key=lambda kv: -kv[1])[:6]
    note = "inside the XNNPACK partitions (XNNPACK's operators, recorded without modules): " + ", ".join(
        f"{name} {ms:.3f} ms" for name, ms in top
    )
    return ops, whole, note


def coverage_of(events: list[dict[str, Any]], whole: list[float]) -> list[float]:
    """Per run: the op and partition events' sum over that run's Method::execute time."""
    timed = [e["raw"] for e in events if e["name"] in ("OPERATOR_CALL", "DELEGATE_CALL") and not e["delegated"]]
    return [sum(raw[i] for raw in timed) / w for i, w in enumerate(whole) if w > 0]


def profile_executorch(targets: list[dict[str, Any]], threads: int, plan: TimingPlan) -> list[RuntimeProfile]:
    """Profile each lowered program (``pte``, ``etrecord``, ``model``, ``label``, ``input_size``), interleaved."""
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(threads)
    sessions: list[list[_Session]] = [[] for _ in targets]

    def opener(i: int):
        def open_session():
            session = _Session(targets[i]["pte"], targets[i]["input_size"])
            sessions[i].append(session)
            return session, session.init_s

        return open_session

    time_interleaved([opener(i) for i in range(len(targets))], plan)
    profiles = []
    with tempfile.TemporaryDirectory(prefix="deepsquare-etdump-") as tmp:
        for i, target in enumerate(targets):
            per_session = []
            for k, session in enumerate(sessions[i]):
                dump = Path(tmp) / f"{i}-{k}.etdp"
                session.program.write_etdump_result_to_file(str(dump), str(Path(tmp) / f"{i}-{k}.bin"))
                per_session.append(events_of(dump, target["etrecord"], plan.warmup))
            events = merge_runs(per_session)
            ops, whole, note = attribute_events(events, target["model"])
            profiles.append(
                RuntimeProfile(
                    runtime="executorch",
                    model=target["label"],
                    file=str(target["pte"]),
                    ops=ops,
                    whole_ms=median(whole) or 0.0,
                    runs=len(whole),
                    threads=threads,
                    notes=[note, "whole-model time: ExecuTorch's Method::execute event of the same runs"],
                    run_coverage=coverage_of(events, whole),
                    whole_min_ms=min(whole) if whole else None,
                )
            )
    return profiles
