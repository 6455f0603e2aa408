"""deepsquare.export: deploy transform, exporters per format, parity gate, benchmarks and the main job.

May import deepsquare.train and deepsquare.runtime (never the other way round). Importing it is cheap. The package
is callable: ``deepsquare.export(checkpoint, to=[...], out=...)`` is ``deepsquare.export.api.export``.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def __getattr__(name: str) -> Any:
    # Not "bench": deepsquare.export.bench is a module (deepsquare.bench is the function).
    if name in ("export", "ExportResult", "ExportFailed", "BenchResult"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``deepsquare.export(...)``: see ``deepsquare.export.api.export``."""
        from .api import export

        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
