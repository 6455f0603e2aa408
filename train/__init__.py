"""deepsquare.train: the model zoo with the DeepSquare modules and DSoP branches."""

from .isqrt import covariance, isqrt_cov_pool, isqrt_newton_schulz, triu_vector
from .models import ARCHS, ModelConfigError, SquareNet, build_from_spec, build_model
from .spec import DSoPSpec, ModelSpec
from .variants import VALID_NAMES, Variant, VariantError, parse_variant

__all__ = [
    "ARCHS",
    "DSoPSpec",
    "ModelConfigError",
    "ModelSpec",
    "SquareNet",
    "VALID_NAMES",
    "Variant",
    "VariantError",
    "build_from_spec",
    "build_model",
    "count_parameters",
    "covariance",
    "isqrt_cov_pool",
    "isqrt_newton_schulz",
    "parse_variant",
    "triu_vector",
]


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
