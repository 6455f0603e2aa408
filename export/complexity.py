"""What one image costs a model, counted by running it: MACs and elementwise operations.

MACs are the multiply-accumulates of every Conv2d and Linear (forward hooks). Elementwise
operations are everything else that computes (activations, squares, residual adds, poolings,
SE's sigmoid and channel scaling): every ATen op the forward pass dispatches is seen, and each
non-matmul, non-data-movement op counts the element count of its largest tensor. That is where
the square modules and SE differ from GAP, and what conv MACs alone cannot show.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# Counted as MACs by the hooks, not here.
MATMUL_OPS = frozenset({"convolution", "_convolution", "conv2d", "addmm", "mm", "bmm", "baddbmm", "linear", "matmul"})
# Data movement and bookkeeping: no arithmetic on the elements.
MOVEMENT_OPS = frozenset(
    {
        "view",
        "_unsafe_view",
        "reshape",
        "t",
        "transpose",
        "permute",
        "expand",
        "slice",
        "select",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "cat",
        "stack",
        "index",
        "index_select",
        "gather",
        "clone",
        "contiguous",
        "flatten",
        "unsqueeze",
        "squeeze",
        "detach",
        "alias",
        "_to_copy",
        "copy",
        "empty",
        "empty_like",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "lift_fresh",
        "as_strided",
        "new_empty",
        "new_zeros",
        "arange",
        "_local_scalar_dense",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "dim",
        "is_same_size",
    }
)


@dataclass
class OpCount:
    macs: int
    elementwise: int
    elementwise_by_op: dict[str, int] = field(default_factory=dict)


class _ElementwiseCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.by_op: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__.rstrip("_")  # relu_ and relu are one op
        if name not in MATMUL_OPS and name not in MOVEMENT_OPS:
            tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
            self.by_op[name] += max((t.numel() for t in tensors), default=0)
        return out


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates of every Conv2d and Linear for one image."""
    return count_ops(model, input_size).macs


def count_ops(model: nn.Module, input_size: int) -> OpCount:
    """MACs and elementwise operations of one ``input_size`` x ``input_size`` image, eval mode."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inputs, out) -> None:
        nonlocal macs
        macs += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m: nn.Linear, _inputs, out) -> None:
        nonlocal macs
        macs += out.numel() // out.shape[0] * m.in_features

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    counter = _ElementwiseCounter()
    was_training = model.training
    try:
        with torch.no_grad(), counter:
            model.eval()(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    by_op = dict(sorted(counter.by_op.items(), key=lambda kv: -kv[1]))
    return OpCount(macs=macs, elementwise=sum(by_op.values()), elementwise_by_op=by_op)
