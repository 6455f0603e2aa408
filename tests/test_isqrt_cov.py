"""iSQRT-COV (Towards Faster Training of Global Covariance Pooling Networks by Iterative Matrix Square Root
Normalization, arXiv:1712.01034): covariance, Newton-Schulz square root, upper-triangle vector.

With trace pre-normalization the normalized eigenvalues of a well-spread d x d matrix are
about 1/d, and 5 coupled Newton-Schulz steps do not reach them: T = 5 approximates the
square root (relative error ~2.5% at d = 16, ~55% at d = 256, table below); more steps
converge to it to float64 round-off. Both facts are tested, and the exact spectral form of
the T-step result is checked to round-off.
"""

import pytest
import torch

from deepsquare.train import covariance, isqrt_cov_pool, isqrt_newton_schulz, triu_vector

# Max relative Frobenius error of T = 5 against the eigh square root, on covariances of
# 20*d Gaussian samples (condition number ~2.5), measured on 2026-11-22 plus ~10% slack.
T5_TOLERANCE = {16: 0.03, 32: 0.11, 64: 0.26, 128: 0.44, 256: 0.60}


def eigh_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(sigma)
    return vectors @ torch.diag_embed(values.clamp_min(0).sqrt()) @ vectors.mT


def well_conditioned(d: int, batch: int = 3) -> torch.Tensor:
    return covariance(torch.randn(batch, d, 20 * d, dtype=torch.float64))


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm(dim=(1, 2)) / b.norm(dim=(1, 2))).max().item()


def test_covariance_matches_the_centering_matrix_formula() -> None:
    x = torch.randn(2, 5, 9, dtype=torch.float64)
    m = x.shape[-1]
    centering = torch.eye(m, dtype=torch.float64) - torch.ones(m, m, dtype=torch.float64) / m
    torch.testing.assert_close(covariance(x), x @ centering @ x.mT / m)


@pytest.mark.parametrize("d", [16, 32, 64, 128, 256])
def test_t5_equals_the_scalar_iteration_on_each_eigenvalue(d: int) -> None:
    # Y_T is a polynomial in A, so it shares A's eigenvectors and maps each normalized
    # eigenvalue a through the scalar recurrence: exact up to round-off for any d and T.
    sigma = well_conditioned(d)
    values, vectors = torch.linalg.eigh(sigma)
    trace = values.sum(-1, keepdim=True)
    y, z = values / trace, torch.ones_like(values)
    for _ in range(5):
        p = 0.5 * (3 - z * y)
        y, z = y * p, p * z
    expected = vectors @ torch.diag_embed(trace.sqrt() * y) @ vectors.mT
    assert relative_error(isqrt_newton_schulz(sigma, 5), expected) < 1e-10


@pytest.mark.parametrize("d", [16, 32, 64, 128, 256])
def test_t5_approximates_the_eigh_square_root_within_stated_tolerance(d: int) -> None:
    sigma = well_conditioned(d)
    assert relative_error(isqrt_newton_schulz(sigma, 5), eigh_sqrt(sigma)) < T5_TOLERANCE[d]


@pytest.mark.parametrize("d", [16, 64, 256])
def test_more_iterations_converge_to_the_eigh_square_root(d: int) -> None:
    sigma = well_conditioned(d)
    assert relative_error(isqrt_newton_schulz(sigma, 20), eigh_sqrt(sigma)) < 1e-10


def test_output_is_spd_square_root_when_squared() -> None:
    sigma = well_conditioned(8)
    root = isqrt_newton_schulz(sigma, 20)
    torch.testing.assert_close(root @ root, sigma, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(root, root.mT)


def test_gradcheck_in_float64() -> None:
    x = torch.randn(2, 4, 10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: isqrt_newton_schulz(covariance(t), 5), (x,))


@pytest.mark.parametrize("d", [1, 4, 16, 64])
def test_triu_vector_length_and_content(d: int) -> None:
    features = torch.randn(2, d, 5, 5)
    vec = isqrt_cov_pool(features)
    assert vec.shape == (2, d * (d + 1) // 2)
    m = torch.arange(d * d, dtype=torch.float32).view(1, d, d)
    expected = [float(m[0, i, j]) for i in range(d) for j in range(i, d)]
    assert triu_vector(m)[0].tolist() == expected


def test_zero_iterations_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one iteration"):
        isqrt_newton_schulz(torch.eye(3).unsqueeze(0), 0)
