"""The package's layers: imports point down, never up, and never in a circle.

Every ``import`` in every ``stnlib`` module, lazy ones inside functions included, is read from the
source (``ast``), resolved to the stnlib module it names, and checked against :data:`LAYERS`:

* a module may import from a lower layer, and from its own component (the modules of one package,
  such as ``stnlib.nn`` or ``stnlib.data``); never from a higher layer or another component of its
  own layer;
* the whole import graph has no cycle.

The order is the one a newcomer reads the package in (README "Layout"); a new module is added here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import stnlib

PACKAGE_DIR = Path(stnlib.__file__).resolve().parent

#: Bottom to top. Each entry is one component: a module, or a package and everything in it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("stnlib", "stnlib.paths", "stnlib.io"),
    ("stnlib.datasets", "stnlib.transforms", "stnlib.paper", "stnlib.hardware"),
    ("stnlib.nn", "stnlib.data"),
    ("stnlib.profiles",),
    ("stnlib.records",),
    ("stnlib.measures",),
    ("stnlib.train",),
    ("stnlib.runs", "stnlib.toy"),
    ("stnlib.launch",),
    ("stnlib.claims",),
    ("stnlib.report",),
    ("stnlib.book",),
    ("stnlib.cli",),
    ("stnlib.__main__",),
)


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    rel = path.relative_to(package_dir.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    return {module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The stnlib modules ``name`` imports anywhere in its source (relative imports resolved)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for t in targets:
            while t and t not in modules:  # "stnlib.nn.models.x" -> the module that defines it
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def component_of(name: str) -> tuple[int, str]:
    """(layer index, component) of a module: the longest declared prefix."""
    best: tuple[int, str] | None = None
    for i, layer in enumerate(LAYERS):
        for comp in layer:
            # "stnlib" is the package's own __init__ only, not a prefix of everything
            inside = name == comp or (comp != "stnlib" and name.startswith(comp + "."))
            if inside and (best is None or len(comp) > len(best[1])):
                best = (i, comp)
    if best is None:
        raise KeyError(name)
    return best


def violations(package_dir: Path = PACKAGE_DIR) -> list[str]:
    modules = all_modules(package_dir)
    graph = {m: imports_of(m, p, modules) for m, p in modules.items()}
    problems = []
    for m, targets in graph.items():
        try:
            lm, cm = component_of(m)
        except KeyError:
            problems.append(f"{m} is in no declared layer (add it to LAYERS)")
            continue
        for t in sorted(targets):
            lt, ct = component_of(t)
            if lt > lm:
                problems.append(f"{m} (layer {lm}) imports {t} (layer {lt}): an upward import")
            elif lt == lm and ct != cm and ct != "stnlib":
                problems.append(f"{m} imports {t}: two components of layer {lm} must not depend on each other")
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_import_points_down_and_none_forms_a_circle():
    problems = violations()
    assert not problems, "\n".join(problems)


def test_the_check_sees_lazy_imports_cycles_and_upward_arrows(tmp_path):
    pkg = tmp_path / "stnlib"
    (pkg / "train").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "records.py").write_text("def f():\n    from stnlib.train import loop  # lazy, and upward\n")
    (pkg / "train" / "__init__.py").write_text("")
    (pkg / "train" / "loop.py").write_text("from stnlib import records\n")
    (pkg / "rogue.py").write_text("")
    problems = "\n".join(violations(pkg))
    assert "stnlib.records (layer 4) imports stnlib.train.loop (layer 6): an upward import" in problems
    assert "import cycle: stnlib.records -> stnlib.train.loop -> stnlib.records" in problems
    assert "stnlib.rogue is in no declared layer" in problems


@pytest.mark.parametrize("peer", ["stnlib.data", "stnlib.nn.models"])
def test_peers_of_one_layer_do_not_import_each_other(tmp_path, peer):
    pkg = tmp_path / "stnlib"
    for sub in ("nn", "data"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "nn" / "models.py").write_text("")
    importer = "stnlib.nn.models" if peer == "stnlib.data" else "stnlib.data"
    path = pkg / (importer.split(".", 1)[1].replace(".", "/") + (".py" if "models" in importer else "/__init__.py"))
    path.write_text(f"import {peer}\n")
    assert f"{importer} imports {peer}: two components of layer 2" in "\n".join(violations(pkg))
