"""The architecture, checked on the imports: the measured never import the measurer (mock_llm and servers
run without loadtests on the path), and inside loadtests each role imports only the roles below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_modules(package: Path) -> list[tuple[str, str]]:
    """(file, module) for every import in every module under ``package``, including lazy ones."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(REPO)), alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(path.relative_to(REPO)), node.module))
    return found


@pytest.mark.parametrize("package", ["mock_llm", "servers"])
def test_the_measured_import_nothing_from_the_measurer(package: str) -> None:
    offenders = [f"{f}: {m}" for f, m in imported_modules(REPO / package) if m.split(".")[0] == "loadtests"]
    assert offenders == []


# What runs inside Locust must not drag in the driver or matplotlib; analysis is pure (records in, figures
# out); reporting renders finished runs and never pays for Locust or the processes a sweep starts.
FORBIDDEN = {
    "scenarios": ("loadtests.driver", "loadtests.reporting", "loadtests.analysis", "loadtests.sweep"),
    "analysis": ("loadtests.driver", "loadtests.reporting", "loadtests.scenarios", "loadtests.sweep"),
    "reporting": ("loadtests.driver", "loadtests.scenarios", "loadtests.sweep"),
}


@pytest.mark.parametrize("role", sorted(FORBIDDEN))
def test_each_role_imports_only_the_roles_below_it(role: str) -> None:
    offenders = [
        f"{f}: {m}"
        for f, m in imported_modules(REPO / "loadtests" / role)
        if any(m == bad or m.startswith(bad + ".") for bad in FORBIDDEN[role])
    ]
    assert offenders == []


def test_loadtests_top_level_holds_only_the_core_modules() -> None:
    # Everything else lives in a role subpackage; a new module at the top is a layout decision to make.
    top = sorted(p.name for p in (REPO / "loadtests").glob("*.py"))
    assert top == [
        "__init__.py",
        "__main__.py",
        "argtypes.py",
        "errors.py",
        "presets.py",
        "results.py",
        "sweep.py",
    ]


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
