"""mkdocs hook: the parts of the docs that are read from the code at build time, so that they cannot drift.

A page asks for a part with a marker line of its own; the hook replaces the marker with the rendered Markdown:

    <!-- generated: cli -->      every parser of the `deepsquare` command (deepsquare.export.commands.iter_parsers)
    <!-- generated: formats -->  the format table (deepsquare.runtime.formats.FORMATS)
    <!-- generated: modules -->  the module registry (deepsquare.train.variants.MODULES)
    <!-- generated: archs -->    the arch registry (deepsquare.train.models.ARCHS)

If the code cannot be imported the build stops with the reason: it never falls back to text written earlier.
Registered in mkdocs.yml under ``hooks:``.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import textwrap
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!--[ \t]*generated:[ \t]*([a-z_-]+)[ \t]*-->[ \t]*$", re.MULTILINE)
USAGE_COLUMNS = "100"  # argparse wraps usage at the terminal width: fixed here, so the page does not depend on it


# --- Markdown helpers -----------------------------------------------------------------------------------------------


def _escape_plain(text: str) -> str:
    text = html.escape(text, quote=False)
    return re.sub(r"([\\*_\[\]])", r"\\\1", text)


def escape(text: str) -> str:
    """Plain text (argparse help) as inline Markdown: code spans (`x` or ``x``) kept, everything else literal."""
    parts = re.split(r"(``[^`]+``|`[^`]+`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a code span: single backticks, whatever the source used
            out.append("`" + part.strip("`") + "`")
        else:
            out.append(_escape_plain(part).replace("`", r"\`"))
    return "".join(out)


def cell(text: str) -> str:
    """One table cell: one line, pipes escaped outside code spans (Python-Markdown's tables keep those whole)."""
    parts = re.split(r"(`[^`]+`)", " ".join(text.split()))
    return "".join(part if i % 2 else part.replace("|", r"\|") for i, part in enumerate(parts))


def code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def paragraphs(text: str) -> str:
    """A description as Markdown: indented or list-like blocks verbatim in a text block, prose as paragraphs."""
    blocks = re.split(r"\n\s*\n", textwrap.dedent(text).strip("\n"))
    out = []
    for block in blocks:
        lines = block.splitlines()
        verbatim = any(line.startswith((" ", "\t")) for line in lines) or any(
            re.match(r"\s*([-*+]|\d+\.)\s", line) for line in lines
        )
        if verbatim:
            out.append("```text\n" + textwrap.dedent(block) + "\n```")
        else:
            out.append(escape(" ".join(line.strip() for line in lines)))
    return "\n\n".join(out)


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


@contextmanager
def fixed_columns():
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = USAGE_COLUMNS
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


# --- the command line -----------------------------------------------------------------------------------------------


def anchor(command_line: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", command_line.lower()).strip("-")


def _default(action: argparse.Action, help_text: str) -> str:
    value = action.default
    if value is None or value is argparse.SUPPRESS or isinstance(value, bool) or "default" in help_text.lower():
        return ""
    if value == "" or value == [] or value == ():
        return ""
    if isinstance(action, argparse._StoreConstAction | argparse._CountAction | argparse._VersionAction):
        return ""
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return f" (default {code(str(value))})"


def render_action(
    parser: argparse.ArgumentParser, action: argparse.Action, command_line: str, known: set[str]
) -> list[list[str]]:
    formatter = parser._get_formatter()
    if isinstance(action, argparse._SubParsersAction):
        rows = []
        for choice in action._choices_actions:
            sub = f"{command_line} {choice.dest}"
            name = f"[{code(choice.dest)}](#{anchor(sub)})" if sub in known else code(choice.dest)
            rows.append([name, escape(choice.help or "")])
        return rows
    invocation = formatter._format_action_invocation(action)
    help_text = formatter._expand_help(action) if action.help else ""
    return [[code(invocation), escape(help_text) + _default(action, help_text)]]


def render_parser(command_line: str, parser: argparse.ArgumentParser, known: set[str]) -> str:
    level = "##" if command_line.count(" ") <= 1 else "###"
    out = [f"{level} {command_line} {{#{anchor(command_line)}}}", ""]
    with fixed_columns():
        usage = parser.format_usage().strip()
    out += ["```text", usage.removeprefix("usage: "), "```", ""]
    if parser.description:
        out += [paragraphs(parser.description), ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if not actions:
            continue
        rows = [row for a in actions for row in render_action(parser, a, command_line, known)]
        title = group.title or "options"
        if group.description:
            title = f"{title}: {group.description}"
        header = ["subcommand", "what"] if all(isinstance(a, argparse._SubParsersAction) for a in actions) else None
        out += [f"**{escape(title)}**", "", table(header or ["option", "help"], rows), ""]
    if parser.epilog:
        out += [paragraphs(parser.epilog), ""]
    return "\n".join(out)


def render_cli() -> str:
    try:
        from deepsquare.export.commands import iter_parsers
    except Exception as exc:
        raise PluginError(
            "CLI reference: cannot import deepsquare.export.commands.iter_parsers "
            f"({type(exc).__name__}: {exc}). The page is rendered from the argparse parsers at build time and is "
            "never filled with text written earlier: install the package into this environment (bash .ci/setup) "
            "and build again."
        ) from exc
    try:
        parsers = [(str(line), parser) for line, parser in iter_parsers()]
    except Exception as exc:
        raise PluginError(f"CLI reference: iter_parsers() failed: {type(exc).__name__}: {exc}") from exc
    if not parsers:
        raise PluginError("CLI reference: deepsquare.export.commands.iter_parsers() yielded no parser")
    known = {line for line, _ in parsers}
    return "\n".join(render_parser(line, parser, known) for line, parser in parsers)


# --- the registries -------------------------------------------------------------------------------------------------


def _import(what: str, module: str, name: str):
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except Exception as exc:
        raise PluginError(
            f"{what}: cannot import {module}.{name} ({type(exc).__name__}: {exc}); install the package into this "
            "environment (bash .ci/setup) and build again"
        ) from exc


def render_formats() -> str:
    formats = _import("format table", "deepsquare.runtime.formats", "FORMATS")
    rows = [
        [
            code(f.name),
            f.title or f.name,
            code(f.file),
            ", ".join(f.precisions),
            f"{f.runtime_title or f.runtime} ({code(f.runtime)})",
            f.layout,
            f.outputs,
            code(f"deepsquare[{f.extra}]"),
            f.runs_on or "anywhere",
        ]
        for f in formats.values()
    ]
    header = ["`--to`", "format", "file in a bundle", "precisions (first = default)", "runtime", "layout"]
    header += ["returns", "installed by", "runs on"]
    return table(header, rows)


def render_modules() -> str:
    modules = _import("module registry", "deepsquare.train.variants", "MODULES")
    rows = [
        [code(m.name), m.kind, m.summary, code(m.equation), m.paper, "yes" if m.deepsquare else ""]
        for m in modules.values()
    ]
    return table(["name", "kind", "what", "equation", "paper", "DeepSquare module"], rows)


def render_archs() -> str:
    archs = _import("arch registry", "deepsquare.train.models", "ARCHS")
    rows = [
        [
            code(a.name),
            a.family,
            ", ".join(code(s) for s in a.stages),
            f"{a.weight_decay:g}",
            "yes" if a.has_blocks else "no (use `elesquare_after=`)",
        ]
        for a in archs.values()
    ]
    return table(["`--arch`", "family", "DSoP stages", "weight decay", "block modules (sex, se*, sen)"], rows)


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": render_cli,
    "formats": render_formats,
    "modules": render_modules,
    "archs": render_archs,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise PluginError(f"{page.file.src_uri}: unknown generated part {name!r}; known: {', '.join(GENERATORS)}")
        return "\n" + GENERATORS[name]().strip("\n") + "\n"  # blank lines: the part is a block of its own

    return MARKER.sub(replace, markdown)
