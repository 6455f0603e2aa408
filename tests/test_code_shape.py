"""The shape of the code: no import cycles, the layering runtime <- train <- export, files and functions small
enough to read, few formatter opt-outs, and no reference to a file a user's clone lacks.

Everything here reads the source (``ast``, ``git ls-files``); nothing is imported or run.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "deepsquare"  # the repository root is the package (pyproject: package-dir "deepsquare" = ".")
LAYERS = ("train", "export", "runtime")
MAX_FILE_LINES = 350
MAX_FUNCTION_LINES = 80
MAX_FMT_SKIPS = 10
FMT_SKIP = "# fmt" + ": skip"  # spelled in two parts so that this file does not count itself
# Files a user's clone does not have (spelled in two parts for the same reason).
ABSENT_FILES = ("SPEC" + ".md", ".." + "/shared")
# The one torch import allowed under runtime/: ExecuTorch's Python bindings take torch tensors, so its runner
# imports torch when it is created (never when deepsquare.runtime is imported).
RUNTIME_TORCH_ALLOWED = {("deepsquare.runtime.runners", "ExecuTorchRunner.__init__")}


def layer_files() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in layer_files()}
    found[PACKAGE] = ROOT / "__init__.py"
    return found


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # what it imports: a module of the package, or an outside name (torch, numpy.linalg, ...)
    line: int
    scope: str  # the function or class the import sits in ("" at module level)

    def where(self, paths: dict[str, Path]) -> str:
        return f"{paths[self.source].relative_to(ROOT)}:{self.line}"


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[str, int, str, int, str]] = []  # (module, level, name, line, scope) per name

    def _nested(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._nested(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._nested(node, node.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._nested(node, node.name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, 0, "", node.lineno, ".".join(self.scope)))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.found.append((node.module or "", node.level, alias.name, node.lineno, ".".join(self.scope)))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """Every import statement of a module (module level, in functions, under ``if TYPE_CHECKING``), resolved to
    the package's module it loads: ``from . import x`` is the module ``x`` when there is one, else the package."""
    visitor = _ImportVisitor()
    visitor.visit(ast.parse(path.read_text(), str(path)))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for module, level, alias, line, scope in visitor.found:
        if level:
            base = package.split(".")
            base = base[: len(base) - (level - 1)]
            module = ".".join([*base, module] if module else base)
        target = f"{module}.{alias}" if alias and f"{module}.{alias}" in known else module
        if target.split(".")[0] == PACKAGE:  # the longest module of the package that the name starts with
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
        out.append(Import(name, target, line, scope))
    return out


def import_graph() -> tuple[dict[str, list[Import]], dict[str, Path]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}, known


def is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def find_cycle(edges: dict[str, list[Import]]) -> list[Import] | None:
    """One import cycle as its chain of imports, or None (depth-first search, grey/black marking)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Import] = []

    def visit(node: str) -> list[Import] | None:
        state[node] = 1
        for edge in edges.get(node, []):
            if edge.target not in edges or is_ancestor(edge.target, node):
                continue  # outside the package, or the module's own parent package (Python imports it first)
            if state.get(edge.target) == 1:
                start = next((i for i, e in enumerate(path) if e.source == edge.target), len(path))
                return [*path[start:], edge]
            if edge.target not in state:
                path.append(edge)
                cycle = visit(edge.target)
                if cycle:
                    return cycle
                path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles() -> None:
    edges, paths = import_graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(
        [cycle[0].source] + [f"{e.target} ({e.where(paths)})" for e in cycle]
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    def edge(a: str, b: str) -> Import:
        return Import(a, b, 1, "")

    edges = {"p.a": [edge("p.a", "p.b")], "p.b": [edge("p.b", "p"), edge("p.b", "p.c")], "p.c": [edge("p.c", "p.a")]}
    edges["p"] = []
    assert [e.target for e in find_cycle(edges)] == ["p.b", "p.c", "p.a"]
    edges["p.c"] = []
    assert find_cycle(edges) is None


def test_layering() -> None:
    """runtime imports neither train, export nor torch; train does not import export."""
    edges, paths = import_graph()
    wrong = []
    for name, found in edges.items():
        for edge in found:
            top = edge.target.split(".")[0]
            if name.startswith("deepsquare.runtime"):
                if edge.target.startswith(("deepsquare.train", "deepsquare.export")):
                    wrong.append(f"{edge.where(paths)}: runtime imports {edge.target}")
                elif top == "torch" and (name, edge.scope) not in RUNTIME_TORCH_ALLOWED:
                    wrong.append(
                        f"{edge.where(paths)}: runtime imports {edge.target} (in {edge.scope or 'the module'})"
                    )
            elif name.startswith("deepsquare.train") and edge.target.startswith("deepsquare.export"):
                wrong.append(f"{edge.where(paths)}: train imports {edge.target}")
    assert not wrong, "imports against the layering runtime <- train <- export:\n" + "\n".join(wrong)


def test_files_and_functions_are_small() -> None:
    long_files, long_functions = [], []
    for path in layer_files():
        text = path.read_text()
        where = path.relative_to(ROOT)
        lines = len(text.splitlines())
        if lines > MAX_FILE_LINES:
            long_files.append(f"{where}: {lines} lines, {lines - MAX_FILE_LINES} over")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # from the def line: decorators excluded
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(
                        f"{where}:{node.lineno} {node.name}(): {length} lines, {length - MAX_FUNCTION_LINES} over"
                    )
    problems = [f"files over {MAX_FILE_LINES} lines:", *long_files] if long_files else []
    problems += [f"functions over {MAX_FUNCTION_LINES} lines:", *long_functions] if long_functions else []
    assert not problems, "split by responsibility:\n" + "\n".join(problems)


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    names = [n for n in listed.decode().split("\0") if n]
    return [ROOT / n for n in names if "node_modules" not in Path(n).parts and Path(n).name != "package-lock.json"]


def test_few_formatter_opt_outs() -> None:
    skips = []
    for path in tracked_files():
        if path.suffix == ".py" and path.is_file():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if FMT_SKIP in line:
                    skips.append(f"{path.relative_to(ROOT)}:{number}")
    assert len(skips) <= MAX_FMT_SKIPS, (
        f"{len(skips)} '{FMT_SKIP}' lines, {len(skips) - MAX_FMT_SKIPS} over {MAX_FMT_SKIPS}: " + ", ".join(skips)
    )


def test_no_reference_to_files_a_clone_lacks() -> None:
    found = []
    for path in tracked_files():
        relative = path.relative_to(ROOT)
        if relative.parts[0] == ".ci" or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        for number, line in enumerate(data.decode(errors="replace").splitlines(), 1):
            for absent in ABSENT_FILES:
                if absent in line:
                    found.append(f"{relative}:{number} mentions {absent}")
    assert not found, "cite the paper (title, arXiv id) or state the fact instead:\n" + "\n".join(found)
