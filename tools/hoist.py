"""Hoist function-local imports of a module to its top.

    python tools/hoist.py motionviz/cli/export.py [more files] [--all] [--qualify]

Hoists ``from <package module> import name`` statements of function bodies (not inside ``try``) -- and, with
``--all``, the same kind of third-party imports except the optional heavy ones of ``tests/test_layering.py``'s
``LOCAL_OK``.  Skips any imported name that the tests monkeypatch on its source
module (a hoisted name import would no longer see the patch) and reports it; with ``--qualify`` such a
name is read through its module instead (``from ..data import load_corpus`` in a function becomes
``from .. import data`` at the top and ``data.load_corpus(...)`` in that function, so a patch of
``motionviz.data.load_corpus`` is still seen).  Run ``ruff check --fix`` afterwards to sort and deduplicate.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_layering import LOCAL_OK  # noqa: E402


def patched_names() -> set[str]:
    """Names the tests set with monkeypatch.setattr(obj, "name", ...) or "module.name" targets."""
    out = set()
    for p in (ROOT / "tests").glob("*.py"):
        t = p.read_text(encoding="utf-8")
        out |= set(re.findall(r"setattr\([^,\n]+,\s*[\"'](\w+)[\"']", t))
        out |= {m.split(".")[-1] for m in re.findall(r"setattr\([\"'](motionviz\.[\w.]+)[\"']", t)}
    return out


def _identifiers(tree: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
    return out


def _qualify(fn: ast.AST, st: ast.ImportFrom, tree: ast.Module, patched: set[str], hoisted: list[str],
             subs: list[tuple[int, int, int, str]]) -> bool | None:
    """Rewrite the patched names of ``st`` (a function-local ``from X.Y import name``) in ``fn`` to
    ``Y.name`` with ``from X import Y`` at the top (unpatched names are hoisted as they are); the
    replacements go to ``subs`` (line, byte columns, text).  None (nothing changed) when ``fn`` assigns one
    of the names."""
    mod = st.module or ""
    parent, _, last = mod.rpartition(".")
    src_from = "." * st.level + parent
    if not last:
        return None
    names = {(a.asname or a.name): a.name for a in st.names}
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and n.id in names and not isinstance(n.ctx, ast.Load):
            return None
    alias = None
    for n in tree.body:                              # reuse an alias the module already has
        if isinstance(n, ast.ImportFrom) and n.level == st.level and (n.module or "") == parent:
            for a in n.names:
                if a.name == last:
                    alias = a.asname or a.name
    if alias is None:
        alias = last if last not in _identifiers(tree) else f"{last}_mod"
        hoisted.append(f"from {src_from} import {last}" + ("" if alias == last else f" as {alias}"))
    keep = [a for a in st.names if (a.asname or a.name) not in patched]
    if keep:
        hoisted.append(ast.unparse(ast.ImportFrom(module=st.module, names=keep, level=st.level)))
    subs.extend((n.lineno, n.col_offset, n.end_col_offset, f"{alias}.{names[n.id]}") for n in ast.walk(fn)
                if isinstance(n, ast.Name) and n.id in names and n.id in patched)
    return True


def main(argv: list[str]) -> int:
    third = "--all" in argv
    qualify = "--qualify" in argv
    patched = patched_names()
    for f in (a for a in argv if not a.startswith("--")):
        p = Path(f)
        src = p.read_text(encoding="utf-8")
        tree = ast.parse(src)
        lines = src.split("\n")
        hoisted, drop, subs = [], set(), []
        bound = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        bound |= {x.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                  for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) for x in ast.walk(t)
                  if isinstance(x, ast.Name)}
        def statements(body):                        # nested blocks too, except try (optional imports)
            for st in body:
                yield st
                if not isinstance(st, (ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    for field in ("body", "orelse"):
                        yield from statements(getattr(st, field, []) or [])

        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for st in statements(fn.body):
                if not isinstance(st, (ast.Import, ast.ImportFrom)):
                    continue
                ours = isinstance(st, ast.ImportFrom) and (st.level or (st.module or "").startswith("motionviz"))
                top = (st.names[0].name if isinstance(st, ast.Import) else st.module or "").split(".")[0]
                if not ours and not (third and top not in LOCAL_OK and top != "app"):
                    continue
                names = {a.asname or a.name for a in st.names}
                if names & bound:
                    print(f"{p}:{st.lineno}: kept (the module binds {sorted(names & bound)} itself)")
                    continue
                if names & patched:
                    if not (qualify and isinstance(st, ast.ImportFrom) and ours):
                        print(f"{p}:{st.lineno}: kept (monkeypatched by the tests: {sorted(names & patched)})")
                        continue
                    done = _qualify(fn, st, tree, patched, hoisted, subs)
                    if done is None:
                        print(f"{p}:{st.lineno}: kept (a patched name is assigned in {fn.name})")
                        continue
                    drop.update(range(st.lineno - 1, st.end_lineno))
                    continue
                text = ast.unparse(st)
                hoisted.append(text)
                drop.update(range(st.lineno - 1, st.end_lineno))
        if not hoisted:
            continue
        for ln, a, b, text in sorted(subs, reverse=True):   # byte offsets, right to left
            raw = lines[ln - 1].encode("utf-8")
            lines[ln - 1] = (raw[:a] + text.encode("utf-8") + raw[b:]).decode("utf-8")
        for i in sorted(drop):                        # the blank line after an import block at a body's start
            j = i + 1
            if j not in drop and j < len(lines) and not lines[j].strip():
                k = min(drop_block for drop_block in range(i + 1) if set(range(drop_block, i + 1)) <= drop) - 1
                if k >= 0 and lines[k].rstrip().endswith((":", '"""')):
                    drop.add(j)
        new = [line for i, line in enumerate(lines) if i not in drop]
        # a function whose body became empty of statements before a blank line keeps its structure; put the
        # imports after the last top-level import
        tree2 = ast.parse("\n".join(new))
        last = max(n.end_lineno for n in tree2.body if isinstance(n, (ast.Import, ast.ImportFrom)))
        new[last:last] = sorted(set(hoisted))
        p.write_text("\n".join(new), encoding="utf-8")
        print(f"{p}: hoisted {len(hoisted)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
