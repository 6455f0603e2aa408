"""deepsquare.train: the model zoo with the DeepSquare modules and DSoP branches, data, and the trainer.

Importing it is cheap (torch comes with the first name used). The package is callable: ``deepsquare.train(...)``
is ``deepsquare.train.api.train``.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

# public name -> the module (relative to this package) that defines it
_EXPORTS = {
    "covariance": ".isqrt",
    "isqrt_cov_pool": ".isqrt",
    "isqrt_newton_schulz": ".isqrt",
    "triu_vector": ".isqrt",
    "ARCHS": ".models",
    "ModelConfigError": ".models",
    "SquareNet": ".models",
    "build_from_spec": ".models",
    "build_model": ".models",
    "DSoPSpec": ".spec",
    "ModelSpec": ".spec",
    "VALID_NAMES": ".variants",
    "Variant": ".variants",
    "VariantError": ".variants",
    "parse_variant": ".variants",
    "TrainConfig": ".config",
    "TrainResult": ".api",
    "train": ".api",
}

__all__ = sorted([*_EXPORTS, "count_parameters"])


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``deepsquare.train(...)``: see ``deepsquare.train.api.train``."""
        return self.train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
