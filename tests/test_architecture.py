"""The shape of the house, checked from the source: no import cycles, the layering, the size limits.

The size limits also cover the scripts and tests (``benchmarks/*.py``, ``tests/*.py``).

Every ``.py`` file under the project's packages is parsed with ``ast`` and every import statement
counts, also the ones inside functions (lazy imports keep ``tutor --help`` fast, but they are
still dependencies). Layering, bottom to top::

    knowledge_base  <-  tutor (core)  <-  finetune, evals, ui  <-  tutor.cli

``tutor.cli`` (with ``tutor.__main__``, the ``python -m tutor`` entry point) is its own node in
the package graph: it is the only place that imports every package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tutor", "finetune", "knowledge_base", "ui", "evals")
CLI_NODE = "tutor.cli"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80

# Package (graph node) -> the project packages it may import: each floor only the floors below.
LAYERS: dict[str, set[str]] = {
    "knowledge_base": set(),
    "tutor": {"knowledge_base"},
    "finetune": {"knowledge_base", "tutor"},
    "evals": {"knowledge_base", "tutor"},
    "ui": {"knowledge_base", "tutor"},
    CLI_NODE: {"knowledge_base", "tutor", "finetune", "evals", "ui"},
}

# Beyond the packages, the size limits also hold for these folders' ``*.py`` files.
SIZE_CHECKED_FOLDERS = ("benchmarks", "tests")

# Source files over MAX_FILE_LINES lines, with the reason they may be.
FILE_ALLOWLIST: dict[str, str] = {}

# Functions over MAX_FUNCTION_LINES lines ("path::Class.function"), with the reason they may be.
FUNCTION_ALLOWLIST: dict[str, str] = {}


def source_files() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the project's packages."""
    modules: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = source_files()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _project_module(name: str) -> str | None:
    """The deepest project module that ``name`` (a dotted import target) names or lies in."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str) -> Iterable[str]:
    """The project modules that ``module`` imports, anywhere in the file."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _project_module(alias.name)
                if target:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = module.split(".")
                if not _is_package(module):
                    base_parts = base_parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                # ``from pkg import submodule`` imports the submodule; ``from mod import name`` the module
                target = _project_module(f"{base}.{alias.name}") or _project_module(base)
                if target:
                    yield target


def module_graph() -> dict[str, set[str]]:
    return {m: {t for t in _imports(m) if t != m} for m in MODULES}


def package_of(module: str) -> str:
    if module == CLI_NODE or module.startswith(CLI_NODE + ".") or module == "tutor.__main__":
        return CLI_NODE
    return module.split(".")[0]


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in module_graph().items():
        src = package_of(module)
        graph.setdefault(src, set()).update(package_of(t) for t in targets)
        graph[src].discard(src)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_scanner_sees_lazy_and_relative_imports() -> None:
    graph = module_graph()
    # lazy (inside a function) imports count
    assert "tutor.builders" in graph["tutor.cli.kb"]
    # ``from tutor.cli import chat`` is an import of the submodule, not only of the package
    assert "tutor.cli.chat" in graph["tutor.cli"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle between modules: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_packages() -> None:
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_knowledge_base_is_the_ground_floor() -> None:
    offending = sorted(
        f"{m} imports {t}"
        for m, targets in module_graph().items()
        if package_of(m) == "knowledge_base"
        for t in targets
        if package_of(t) != "knowledge_base"
    )
    assert not offending, "knowledge_base must import no other project package: " + "; ".join(
        offending
    )


def test_each_package_imports_only_the_floors_below() -> None:
    graph = package_graph()
    assert set(graph) == set(LAYERS), "a new package: give it a floor in LAYERS"
    offending = sorted(
        f"{m} imports {t}"
        for m, targets in module_graph().items()
        for t in targets
        if package_of(t) != package_of(m) and package_of(t) not in LAYERS[package_of(m)]
    )
    assert not offending, "imports against the layering: " + "; ".join(offending)


def test_only_the_cli_imports_the_cli() -> None:
    offending = sorted(
        f"{m} imports {t}"
        for m, targets in module_graph().items()
        if package_of(m) != CLI_NODE
        for t in targets
        if package_of(t) == CLI_NODE
    )
    assert not offending, "; ".join(offending)


def _long_functions(tree: ast.AST, prefix: str = "") -> Iterable[tuple[str, int]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            n = (node.end_lineno or node.lineno) - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                yield name, n
            yield from _long_functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _long_functions(node, prefix + node.name + ".")
        else:
            yield from _long_functions(node, prefix)


def size_checked_files() -> list[Path]:
    """The packages' modules, then every script in ``benchmarks/`` and every file in ``tests/``."""
    files = list(MODULES.values())
    for folder in SIZE_CHECKED_FOLDERS:
        files += sorted((ROOT / folder).glob("*.py"))
    return files


def size_violations() -> tuple[dict[str, int], dict[str, int]]:
    """Files over MAX_FILE_LINES and functions over MAX_FUNCTION_LINES, with their lengths."""
    files: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in size_checked_files():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            files[rel] = n
        for name, length in _long_functions(ast.parse(text)):
            functions[f"{rel}::{name}"] = length
    return files, functions


def test_no_file_or_function_over_the_limits_outside_the_allowlist() -> None:
    files, functions = size_violations()
    too_long = [f"{k} ({n} lines)" for k, n in sorted(files.items()) if k not in FILE_ALLOWLIST]
    too_long += [
        f"{k} ({n} lines)" for k, n in sorted(functions.items()) if k not in FUNCTION_ALLOWLIST
    ]
    assert not too_long, (
        f"over {MAX_FILE_LINES} lines per file / {MAX_FUNCTION_LINES} per function: "
        + "; ".join(too_long)
    )


def test_the_size_check_covers_the_packages_scripts_and_tests() -> None:
    checked = {p.relative_to(ROOT).as_posix() for p in size_checked_files()}
    wanted = {"tutor/agent.py", "benchmarks/generation.py", "tests/test_faults.py"}
    assert wanted <= checked, sorted(wanted - checked)
    long_source = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    assert list(_long_functions(ast.parse(long_source))) == [("f", MAX_FUNCTION_LINES + 1)]


def test_the_allowlist_has_no_stale_entries() -> None:
    files, functions = size_violations()
    stale = sorted(set(FILE_ALLOWLIST) - set(files)) + sorted(
        set(FUNCTION_ALLOWLIST) - set(functions)
    )
    assert not stale, "now within the limits (or gone), remove from the allowlist: " + ", ".join(
        stale
    )


# The fakes for tests and benchmarks (fake LM, fake OpenAI server, tiny Llama, hashing embedder,
# UI test helpers): the product never imports them.
TESTING_MODULES = ("tutor.testing", "knowledge_base.testing", "ui.testing")


def _is_testing(module: str) -> bool:
    return any(module == t or module.startswith(t + ".") for t in TESTING_MODULES)


def test_the_product_does_not_import_the_test_fakes() -> None:
    assert "tutor.testing.fake_lm" in MODULES and "knowledge_base.testing" in MODULES
    offending = sorted(
        f"{m} imports {t}"
        for m, targets in module_graph().items()
        if not _is_testing(m)
        for t in targets
        if _is_testing(t)
    )
    assert not offending, "only tests and benchmarks may import the fakes: " + "; ".join(offending)
