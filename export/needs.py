"""Importing a converter's module, or a clear error naming the extra that brings it."""

from __future__ import annotations

import importlib
from typing import Any


class ConverterMissing(RuntimeError):
    """A converter this format needs is not installed."""


def need(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConverterMissing(f"{module} is not installed: pip install 'deepsquare[{extra}]'") from exc
