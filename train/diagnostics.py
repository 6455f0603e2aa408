"""What the square modules do to a run, step by step (``deepsquare train --diagnostics``).

Every training step adds one row to ``OUT/diagnostics.csv``: the loss and learning rate, the pooled
features the classifier sees (GAP / Square-Pooling / GeM output), the logit range, the Square-Softmin
scale ``|s|``, the Square-Excitation ``alpha`` and gates ``s = G / (G + alpha^2)``, and the gradient norm of
each top-level part of the network (stem, stages, head) before clipping. These are the quantities in which
a square module differs from GAP (DeepSquare, arXiv:1906.04979: SP makes the head quadratic in the
features, SS quartic in them), so a run that learns slower shows where.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deepsquare.runtime.files import write_text_atomically

from .layers import SquareExcitation, SquareSoftmin

FILE = "diagnostics.csv"


class Diagnostics:
    """Forward hooks on the pooling and the Square-Excitation modules; one row per :meth:`record`."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.rows: list[dict[str, Any]] = []
        self.step: dict[str, float] = {}
        self.gates: list[Tensor] = []
        self.handles = [model.pool.register_forward_hook(self._pooled)]
        self.sex = [m for m in model.modules() if isinstance(m, SquareExcitation)]
        self.handles += [m.register_forward_hook(self._gate) for m in self.sex]
        self.softmin = next((m for m in model.modules() if isinstance(m, SquareSoftmin)), None)

    def _pooled(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if module.training:
            pooled = output.detach()
            self.step.update(pooled_mean=pooled.mean().item(), pooled_max=pooled.max().item())

    def _gate(self, module: SquareExcitation, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if module.training:
            with torch.no_grad():
                self.gates.append(module.scale(inputs[0].detach()).flatten())

    def record(self, epoch: int, step: int, lr: float, loss: Tensor, logits: Tensor) -> None:
        """Call after ``backward()`` and before clipping: gradients are read as they came out."""
        row: dict[str, Any] = {"epoch": epoch + 1, "step": step + 1, "lr": lr, "loss": loss.item(), **self.step}
        detached = logits.detach()
        row["logit_range"] = (detached.max(dim=1).values - detached.min(dim=1).values).mean().item()
        row["logit_absmax"] = detached.abs().max().item()
        if self.softmin is not None:
            row["ss_scale"] = self.softmin.scale.detach().abs().mean().item()
        if self.sex:
            alphas = torch.cat([m.alpha.detach().abs() for m in self.sex])
            gates = torch.cat(self.gates)
            row.update(
                sex_alpha_mean=alphas.mean().item(),
                sex_alpha_max=alphas.max().item(),
                sex_gate_mean=gates.mean().item(),
                sex_gate_min=gates.min().item(),
            )
        grads: dict[str, list[Tensor]] = {}
        for name, parameter in self.model.named_parameters():
            if parameter.grad is not None:
                grads.setdefault(name.split(".")[0], []).append(parameter.grad.detach().pow(2).sum())
        # one sum per part, read once: no host sync per parameter on every step
        squares = dict(zip(grads, torch.stack([torch.stack(g).sum() for g in grads.values()]).tolist(), strict=True))
        row["grad_total"] = math.sqrt(sum(squares.values()))
        row.update({f"grad_{part}": math.sqrt(value) for part, value in squares.items()})
        self.rows.append({k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in row.items()})
        self.step, self.gates = {}, []

    def resume(self, out: Path, epochs_done: int) -> None:
        """Keep the rows of the epochs a resumed run already has (a killed epoch's partial rows are dropped)."""
        path = out / FILE
        if path.is_file():
            with open(path, newline="") as f:
                kept = [row for row in csv.DictReader(f) if int(row["epoch"]) <= epochs_done]
            self.rows = [{k: _number(v) for k, v in row.items() if v != ""} for row in kept] + self.rows

    def save(self, out: Path) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row if c not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomically(out / FILE, buffer.getvalue())

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value
