"""The agent's imports run one way: no cycles (imports inside functions count), nothing from the controller.

Read from the source with `ast`, so an import hidden in a function body or
behind TYPE_CHECKING is seen as well; nothing is imported to find them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "carestack_agent"
SOURCE = Path(__file__).resolve().parents[2] / "agent" / PACKAGE


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `name` imports (absolute names), wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from . import probe` names a module, `from .jobs import Context` a name in one
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the agent's modules it needs: its imports, and the packages holding them (run on import)."""
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = {t for t in imported(name, path, known) if t == PACKAGE or t.startswith(PACKAGE + ".")}
        edges[name] = {t for t in targets if t != name}
    return edges


def closure(start: str, edges: dict[str, set[str]]) -> set[str]:
    def with_parents(name: str) -> set[str]:
        parts = name.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}

    seen: set[str] = set()
    todo = list(with_parents(start))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for target in edges.get(name, set()):
            todo.extend(with_parents(target) - seen)
    return seen


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), each as a path back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_the_import_walk_sees_imports_inside_functions_and_relative_modules(tmp_path: Path) -> None:
    source = tmp_path / "jobs.py"
    source.write_text(
        "from . import probe\nfrom .proc import Deadline\n\ndef f():\n    from .actions.recovery import x\n"
    )
    known = {f"{PACKAGE}.probe", f"{PACKAGE}.proc", f"{PACKAGE}.actions.recovery"}
    assert imported(f"{PACKAGE}.jobs", source, known) == {PACKAGE} | known
    edges = graph()
    assert f"{PACKAGE}.probe" in edges[f"{PACKAGE}.actions.update"]  # `from .. import exitcodes, probe`
    # a cycle through a function-level import is one like any other
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_the_agent_has_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles in the agent: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_agent_imports_nothing_from_the_controller_or_the_lab() -> None:
    mods = modules()
    known = set(mods)
    offending = {
        name: sorted(t for t in imported(name, path, known) if t.split(".")[0] in ("infra", "lab"))
        for name, path in mods.items()
    }
    assert not {k: v for k, v in offending.items() if v}


def test_a_backup_does_not_load_the_update_or_rollback_code() -> None:
    edges = graph()
    heavy = {f"{PACKAGE}.actions.{m}" for m in ("update", "rollback", "recovery")} | {
        f"{PACKAGE}.providers.registry",
        f"{PACKAGE}.providers.apt",
        f"{PACKAGE}.providers.wordpress",
        f"{PACKAGE}.providers.release",
    }
    assert not closure(f"{PACKAGE}.actions.backup", edges) & heavy
    # ...while the update action does reach them (the walk would otherwise prove nothing)
    assert heavy - {f"{PACKAGE}.actions.recovery"} <= closure(f"{PACKAGE}.actions.update", edges)
    assert f"{PACKAGE}.actions.recovery" in closure(f"{PACKAGE}.cli", edges)
