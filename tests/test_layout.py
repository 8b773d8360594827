"""The architecture, checked on the imports: the measured never import the measurer (mock_llm and servers
run without loadtests on the path), and inside loadtests commands sit on top of kits: each role imports only
the roles below it, nothing imports a command, no import runs in a circle, and functions fit on a screen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "loadtests"
ROLES = ("commands", "driver", "analysis", "reporting", "scenarios")
# Kept where the READMEs name them (`python -m <path>`): each only runs a command's main.
ENTRY_SHIMS = {
    "loadtests/driver/mockbench.py": "loadtests.commands.mockbench",
    "loadtests/driver/memcheck.py": "loadtests.commands.memcheck",
    "loadtests/reporting/workchart.py": "loadtests.commands.workchart",
}
MAX_FUNCTION_LINES = 80
PARSER_BUILDERS = ("build_parser", "_parser", "add_shared_arguments")  # long by nature: one call per flag


def imported_modules(package: Path) -> list[tuple[str, str]]:
    """(file, module) for every import in every module under ``package``, including lazy ones."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(REPO)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(REPO)), node.module))
                # `from loadtests.driver import cpu` imports the module loadtests.driver.cpu
                found += [(str(path.relative_to(REPO)), f"{node.module}.{a.name}") for a in node.names]
    return found


def _module(path: str) -> str:
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def _loadtests_graph() -> dict[str, set[str]]:
    """module -> the loadtests modules it imports (a package import counts as its __init__)."""
    modules = {_module(str(p.relative_to(REPO))) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path, module in imported_modules(PACKAGE):
        if module in modules and module != _module(path):
            graph[_module(path)].add(module)
    return graph


@pytest.mark.parametrize("package", ["mock_llm", "servers"])
def test_the_measured_import_nothing_from_the_measurer(package: str) -> None:
    offenders = [f"{f}: {m}" for f, m in imported_modules(REPO / package) if m.split(".")[0] == "loadtests"]
    assert offenders == []


# What runs inside Locust must not drag in the driver or matplotlib; analysis is pure (records in, figures
# out); reporting renders finished runs and never pays for Locust or the processes a sweep starts; no kit
# imports a command, and a command composes kits, never another command.
FORBIDDEN = {
    "scenarios": ("loadtests.driver", "loadtests.reporting", "loadtests.analysis", "loadtests.commands"),
    "analysis": ("loadtests.driver", "loadtests.reporting", "loadtests.scenarios", "loadtests.commands"),
    "reporting": ("loadtests.driver", "loadtests.scenarios", "loadtests.commands"),
    "driver": ("loadtests.reporting", "loadtests.commands"),
    "commands": ("loadtests.commands.",),
}


@pytest.mark.parametrize("role", sorted(FORBIDDEN))
def test_each_role_imports_only_the_roles_below_it(role: str) -> None:
    offenders = [
        f"{f}: {m}"
        for f, m in imported_modules(PACKAGE / role)
        if f not in ENTRY_SHIMS
        and any(m == bad or m.startswith(bad if bad.endswith(".") else bad + ".") for bad in FORBIDDEN[role])
    ]
    assert offenders == []


def test_nothing_runs_back_up_to_the_dispatcher() -> None:
    offenders = [f"{f}: {m}" for f, m in imported_modules(PACKAGE) if m == "loadtests.__main__"]
    assert offenders == []


def test_the_imports_have_no_circle() -> None:
    graph = _loadtests_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_only_commands_define_main_and_nothing_imports_a_command_but_for_main() -> None:
    """A module is a command (``main``, imported only by the dispatcher or an entry shim) or a kit."""
    with_main = {
        _module(str(p.relative_to(REPO)))
        for p in PACKAGE.rglob("*.py")
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in ast.parse(p.read_text()).body)
    }
    assert {m for m in with_main if not m.startswith("loadtests.commands.")} == {"loadtests.__main__"}
    for path in PACKAGE.rglob("*.py"):
        rel = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module in with_main
                and rel != "loadtests/__main__.py"
            ):
                assert [a.name for a in node.names] == ["main"], f"{rel} imports {node.module} beyond main"


def test_entry_shims_only_run_their_command() -> None:
    for rel, command in ENTRY_SHIMS.items():
        tree = ast.parse((REPO / rel).read_text())
        imports = [n.module for n in tree.body if isinstance(n, ast.ImportFrom)]
        assert command in imports, rel
        assert not [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)], rel
        assert len((REPO / rel).read_text().splitlines()) <= 12, rel


def test_functions_fit_on_a_screen() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in PARSER_BUILDERS:
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_loadtests_top_level_holds_only_the_core_modules() -> None:
    # Everything else lives in a role subpackage; a new module at the top is a layout decision to make.
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "argtypes.py", "errors.py", "presets.py", "results.py"]
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(
        ROLES
    )


def test_the_tests_mirror_the_packages() -> None:
    """tests/loadtests/<role>/ for each role, and nothing but test modules and fixtures beside them."""
    tests = REPO / "tests" / "loadtests"
    roles = sorted(p.name for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert roles == sorted(ROLES)
    names = [p.name for p in tests.rglob("*.py")]
    assert all(n.startswith("test_") or n == "conftest.py" for n in names)
    assert len(names) == len(set(names)), "test module names must be unique (pytest's rootdir imports)"


def test_every_imported_package_is_declared() -> None:
    """What the harness imports is in pyproject's dependencies (an undeclared import works here only
    because something else happened to install it)."""
    import re
    import sys
    import tomllib
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in project["dependencies"]
    }
    first_party = {"mock_llm", "servers", "loadtests"}
    providers = packages_distributions()
    undeclared = set()
    for package in ("mock_llm", "servers", "loadtests"):
        for path, module in imported_modules(REPO / package):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in first_party or top == "__future__":
                continue
            dists = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
            if not dists & declared:
                undeclared.add(f"{top} ({path})")
    assert sorted(undeclared) == []
