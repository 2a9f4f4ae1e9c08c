"""Production code (infra/, agent/) never imports the lab: every import is read from the source (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = "lab"


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, at any depth (functions, try blocks, TYPE_CHECKING),
    including `importlib.import_module("...")` and `__import__("...")` with a literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))  # relative imports stay inside their package
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def is_lab(module: str) -> bool:
    return module == LAB or module.startswith(LAB + ".")


def test_the_walker_finds_imports_anywhere_in_a_module() -> None:
    source = (
        "import lab\n"
        "def f():\n"
        "    from lab.state import LabState\n"
        "    try:\n"
        "        import lab.s3 as s3\n"
        "    except ImportError:\n"
        "        pass\n"
        "importlib.import_module('lab.cli')\n"
        "import labels, infra.lab_report\n"
    )
    assert sorted(m for _, m in imported_modules(source) if is_lab(m)) == ["lab", "lab.cli", "lab.s3", "lab.state"]


@pytest.mark.parametrize("package", ["infra", "agent"])
def test_nothing_in_production_code_imports_the_lab(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imported_modules(path.read_text())
        if is_lab(module)
    ]
    assert offenders == [], "production code must not import the lab:\n" + "\n".join(offenders)
