"""iSQRT-COV: covariance pooling normalized by Newton-Schulz iterations.

"Towards Faster Training of Global Covariance Pooling Networks by Iterative Matrix Square Root
Normalization" (arXiv:1712.01034), as the DSoP branches use it (arXiv:2006.00809).

Plain differentiable matrix products, no custom ``autograd.Function``, so autograd
handles the backward pass and the code stays traceable.
"""

from __future__ import annotations

import torch
from torch import Tensor


def covariance(x: Tensor) -> Tensor:
    """``Sigma = (1/M) X (I - (1/M) 1 1^T) X^T`` for ``x`` of shape ``(B, d, M)``."""
    m = x.shape[-1]
    centered = x - x.mean(dim=-1, keepdim=True)
    return centered @ centered.transpose(-1, -2) / m


def isqrt_newton_schulz(sigma: Tensor, iterations: int = 5) -> Tensor:
    """Approximate ``Sigma^(1/2)`` of a batch ``(B, d, d)`` of SPD matrices.

    Pre-normalize by the trace, run ``iterations`` coupled Newton-Schulz steps, then
    post-compensate by ``sqrt(trace)``. With trace normalization the eigenvalues of ``A``
    lie in (0, 1], so the iteration converges; how far it gets in ``T`` steps depends on
    the smallest normalized eigenvalues (roughly 1/d for a well-spread spectrum), which is
    why the paper's T = 5 is an approximation rather than the exact square root.
    """
    if iterations < 1:
        raise ValueError(f"iSQRT needs at least one iteration, got {iterations}")
    d = sigma.shape[-1]
    eye = torch.eye(d, dtype=sigma.dtype, device=sigma.device).expand_as(sigma)
    # The clamp only matters for a zero covariance (e.g. a 1x1 feature map), which would
    # otherwise turn 0/0 into NaN; any real trace is many orders above it.
    trace = sigma.diagonal(dim1=-2, dim2=-1).sum(-1).view(-1, 1, 1).clamp_min(1e-20)
    y = sigma / trace
    z = eye
    for _ in range(iterations):
        p = 0.5 * (3.0 * eye - z @ y)
        y = y @ p
        z = p @ z
    return trace.sqrt() * y


def triu_vector(matrix: Tensor) -> Tensor:
    """The upper triangle (diagonal included) of ``(B, d, d)`` as ``(B, d(d+1)/2)``."""
    d = matrix.shape[-1]
    rows, cols = torch.triu_indices(d, d, device=matrix.device)
    return matrix[:, rows, cols]


def isqrt_cov_pool(features: Tensor, iterations: int = 5) -> Tensor:
    """``(B, d, H, W)`` feature maps -> ``(B, d(d+1)/2)`` iSQRT-normalized covariance."""
    b, d, h, w = features.shape
    sigma = covariance(features.reshape(b, d, h * w))
    return triu_vector(isqrt_newton_schulz(sigma, iterations))
