"""The bundle contract as a JSON Schema: ``bundle.schema.json`` beside this module (package data).

One file describes ``model.json`` (``deepsquare-bundle/2``, and the previous ``deepsquare-bundle/1``, which
still loads), and under ``definitions`` the golden self-check file (``golden.json``) and the first-screen
samples list (``samples.json``). The export validates what it writes before publishing; the loader validates
what it reads. ``jsonschema`` is imported on the first validation only: ``import deepsquare`` stays cheap.
``deepsquare schema`` prints the file; every bundle carries a copy as ``model.schema.json``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("bundle.schema.json")
BUNDLE_COPY = "model.schema.json"  # the copy of the schema inside every bundle
GOLDEN = "golden"  # the definitions that validate golden.json and samples.json
SAMPLES = "samples"


class SchemaError(ValueError):
    """A document that does not follow the schema; the message names the field's path (``formats.onnx.file``)."""


def schema_text() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


@functools.cache
def bundle_schema() -> dict[str, Any]:
    return json.loads(schema_text())


@functools.cache
def _validator(definition: str | None) -> Any:
    import jsonschema

    schema = bundle_schema()
    if definition is not None:  # the same document, its root replaced by a reference to one of its definitions
        schema = {key: schema[key] for key in ("$schema", "$id", "definitions")}
        schema["allOf"] = [{"$ref": f"#/definitions/{definition}"}]
    return jsonschema.Draft7Validator(schema)


def field_path(parts: Any) -> str:
    """``formats.onnx.file``, ``classes[2]``; the top level is ``(top level)``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def errors(document: Any, definition: str | None = None) -> list[str]:
    """Every way ``document`` breaks the schema (of model.json, or of ``definitions/DEFINITION``), most telling
    first, each as ``PATH: what is wrong``; [] when it follows it."""
    from jsonschema.exceptions import best_match, relevance

    found = list(_validator(definition).iter_errors(document))
    if not found:
        return []
    best = best_match(found)
    ordered = [best, *sorted((e for e in found if e is not best), key=relevance)]
    return [f"{field_path(e.absolute_path)}: {_message(e)}" for e in ordered]


def _message(error: Any) -> str:
    """jsonschema's message; a pattern's would be a regular expression: the field's description instead."""
    described = error.schema.get("description") if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and described:
        return _short(f"{error.instance!r} must be {described}")
    return _short(error.message)


def check(document: Any, definition: str | None = None) -> None:
    """Raise [SchemaError][deepsquare.runtime.schema.SchemaError] naming the first wrong field, if one is."""
    found = errors(document, definition)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SchemaError(f"{found[0]}{more}")


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
