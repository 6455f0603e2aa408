"""The export's request error, torch-free: [ExportError][deepsquare.export.errors.ExportError] is raised by the
request checks ([check_request][deepsquare.export.request.check_request]) and by the keep-float spec
([int8_units][deepsquare.export.int8_units]), both before torch is imported."""

from __future__ import annotations


class ExportError(RuntimeError):
    """A problem with the request itself (bad --to, unwritable --out, missing converter)."""
