"""The layout keeps one direction (issue 9): read every module's imports with `ast`.

- Nothing under kiosk/ except the command layer (kiosk/cli/) imports kiosk.cli, at
  module level or inside a function.
- No import cycle between the modules of kiosk/ and collector/, counting every import
  (module level, inside functions, under TYPE_CHECKING).

Run as a script to print the module graph's cycles: python tests/test_layers.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kiosk", "collector")
COMMAND_LAYER = "kiosk.cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `name` imports anywhere in its file. `from a import b`
    counts as importing a.b when that is a module, else a itself."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the current package upwards
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                out.add(sub if sub in known else source)
    # `import a.b.c` names a.b.c; keep only what is one of ours (a module or a package).
    resolved = set()
    for target in out:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _is_command_layer(name: str) -> bool:
    return name == COMMAND_LAYER or name.startswith(COMMAND_LAYER + ".")


def test_nothing_below_the_command_layer_imports_it() -> None:
    offenders = sorted(f"{name} imports {target}" for name, targets in graph().items()
                       if not _is_command_layer(name) for target in targets if _is_command_layer(target))
    assert offenders == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(graph()) == []


def test_the_checker_sees_cycles_and_layer_breaks(tmp_path: Path) -> None:
    """The checker itself: a tiny tree with a cycle through a function-level import and a
    library module that imports the command layer."""
    global ROOT
    pkg = tmp_path / "kiosk"
    (pkg / "cli").mkdir(parents=True)
    (tmp_path / "collector").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("def main():\n    pass\n")
    (pkg / "a.py").write_text("def f():\n    from kiosk.b import g\n")
    (pkg / "b.py").write_text("from . import a\nfrom kiosk.cli import main\n")
    (tmp_path / "collector" / "__init__.py").write_text("")
    saved, ROOT = ROOT, tmp_path
    try:
        edges = graph()
    finally:
        ROOT = saved
    assert edges["kiosk.b"] == {"kiosk.a", "kiosk.cli"}
    assert cycles(edges) == [["kiosk.a", "kiosk.b"]]


if __name__ == "__main__":
    g = graph()
    for component in cycles(g):
        print("cycle:", " <-> ".join(component))
        for name in component:
            print(f"  {name} -> {', '.join(sorted(t for t in g[name] if t in component))}")
    for name, targets in sorted(g.items()):
        for target in sorted(targets):
            if _is_command_layer(target) and not _is_command_layer(name):
                print(f"layer: {name} imports {target}")
