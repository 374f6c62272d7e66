"""Move top-level definitions of one module into another module, verbatim, and rewrite their importers.

    python tools/split.py motionviz.video motionviz.cli.video add_arguments run _quiet_native_logs \
        [--doc "docstring of a new module"]

The definitions (with the comments and decorators right above them) are cut from the source and appended to
the destination (created with ``--doc`` as its docstring when missing).  The destination gets a copy of the
source's module-level imports (relative ones re-based) plus an import of every remaining source name the
moved code uses; the source imports back the moved names it still uses.  Importers elsewhere (``from m import
name``, ``m.name`` attribute strings in the tests, ``"m:name"`` tables) are rewritten.  Run ``ruff check
--fix`` afterwards: it drops the imports that are now unused and sorts the rest.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from move import absolute, module_files, relative  # noqa: E402


def top_names(tree: ast.Module) -> dict[str, ast.stmt]:
    out = {}
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[n.name] = n
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                for x in ast.walk(t):
                    if isinstance(x, ast.Name):
                        out[x.id] = n
    return out


def span(lines: list[str], node: ast.stmt) -> tuple[int, int]:
    """0-based [start, end) of a definition with its decorators and the comment lines right above it."""
    start = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno) - 1
    while start > 0 and lines[start - 1].startswith("#"):
        start -= 1
    return start, node.end_lineno


def used_names(nodes: list[ast.stmt]) -> set[str]:
    return {x.id for n in nodes for x in ast.walk(n) if isinstance(x, ast.Name)} | \
           {x.value.id for n in nodes for x in ast.walk(n) if isinstance(x, ast.Attribute)
            and isinstance(x.value, ast.Name)}


def rebase_import(node: ast.ImportFrom, src_mod: str, src_pkg: bool, dst_mod: str) -> str:
    if not node.level:
        return ast.unparse(node)
    level, rest = relative(dst_mod, False, absolute(src_mod, src_pkg, node))
    names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
    return f"from {'.' * level}{rest} import {names}"


def main(argv: list[str]) -> int:
    doc = None
    if "--doc" in argv:
        i = argv.index("--doc")
        doc = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    suffix = "_" + argv[1].split(".")[1][0].upper() if len(argv) > 1 else ""
    if "--alias-suffix" in argv:
        i = argv.index("--alias-suffix")
        suffix = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) < 3:
        raise SystemExit(__doc__)
    src_mod, dst_mod, names = argv[0], argv[1], argv[2:]
    mods = module_files()
    src_path = mods[src_mod]
    src_pkg = src_path.name == "__init__.py"
    dst_path = mods.get(dst_mod) or ROOT.joinpath(*dst_mod.split(".")[:-1], dst_mod.split(".")[-1] + ".py")
    src = src_path.read_text(encoding="utf-8")
    tree = ast.parse(src)
    lines = src.split("\n")
    defs = top_names(tree)
    missing = [n for n in names if n not in defs]
    if missing:
        raise SystemExit(f"{src_mod} defines no {missing}")
    nodes = list({id(defs[n]): defs[n] for n in names}.values())
    nodes.sort(key=lambda n: n.lineno)
    all_moved = {k for k, v in defs.items() if any(v is n for n in nodes)}
    spans = [span(lines, n) for n in nodes]
    moved_lines = lines[:]                     # relative imports inside the moved code, re-based
    for n in nodes:
        for imp in (x for x in ast.walk(n) if isinstance(x, ast.ImportFrom) and x.level):
            i = imp.lineno - 1
            old_text = "." * imp.level + (imp.module or "")
            new_text = rebase_import(imp, src_mod, src_pkg, dst_mod).split(" import ")[0][len("from "):]
            moved_lines[i] = re.sub(r"from\s+" + re.escape(old_text) + r"\s+import\s", f"from {new_text} import ",
                                    moved_lines[i], count=1)
    chunks = ["\n".join(moved_lines[a:b]) for a, b in spans]
    # remaining source
    keep = lines[:]
    for a, b in sorted(spans, reverse=True):
        del keep[a:b]
        while a < len(keep) and a > 0 and not keep[a - 1].strip() and not keep[a].strip():
            del keep[a]
    rest_src = "\n".join(keep)
    rest_tree = ast.parse(rest_src)
    rest_defs = top_names(rest_tree)
    # imports for the destination: the source's module-level imports + the source names the moved code uses
    imports = []
    for n in tree.body:
        if isinstance(n, ast.Import):
            imports.append(ast.unparse(n))
        elif isinstance(n, ast.ImportFrom) and n.module != "__future__":
            imports.append(rebase_import(n, src_mod, src_pkg, dst_mod))
    own = relative(dst_mod, False, dst_mod)                 # imports of the destination itself
    imports = [i for i in imports if not i.startswith(f"from {'.' * own[0]}{own[1]} import ")]
    need_from_src = sorted((used_names(nodes) & set(rest_defs)) - all_moved)
    if need_from_src:
        level, rest = relative(dst_mod, False, src_mod)
        imports.append(f"from {'.' * level}{rest} import {', '.join(need_from_src)}")
    if dst_path.exists():
        dst = dst_path.read_text(encoding="utf-8").rstrip("\n")
        dtree = ast.parse(dst)
        last_import = max((n.end_lineno for n in dtree.body if isinstance(n, (ast.Import, ast.ImportFrom))),
                          default=1)
        dl = dst.split("\n")
        dst = "\n".join(dl[:last_import] + imports + dl[last_import:])
    else:
        text = "\n".join(textwrap.wrap(f'"""{doc or dst_mod}"""', 110))
        dst = f"{text}\n\nfrom __future__ import annotations\n\n" + "\n".join(imports)
    dst = dst + "\n\n\n" + "\n\n\n".join(chunks) + "\n"
    # the source imports back what it still uses of the moved names
    back = sorted(used_names(list(rest_tree.body)) & all_moved)
    if back:
        level, rest = relative(src_mod, src_pkg, dst_mod)
        last_import = max(n.end_lineno for n in rest_tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
        kl = rest_src.split("\n")
        kl.insert(last_import, f"from {'.' * level}{rest} import {', '.join(back)}")
        rest_src = "\n".join(kl)
    # __all__ of the source: moved names leave it
    def drop(m: re.Match) -> str:
        body = m.group(2)
        for name in all_moved:
            q = '"' + re.escape(name) + '"'
            body = re.sub(r"^[ \t]*" + q + r",[ \t]*\n", "", body, flags=re.M)     # a line of its own
            body = re.sub(q + r",[ \t]*", "", body)
            body = re.sub(r",?[ \t]*" + q, "", body)
        return m.group(1) + body + m.group(3)
    rest_src = re.sub(r"(__all__ = \[)(.*?)(\])", drop, rest_src, count=1, flags=re.S)
    src_path.write_text(rest_src.rstrip("\n") + "\n", encoding="utf-8")
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    dst_path.write_text(dst, encoding="utf-8")
    # importers elsewhere
    targets = [p for p in [*ROOT.joinpath("motionviz").rglob("*.py"), *ROOT.joinpath("tests").glob("*.py"),
                           ROOT / "app.py", *ROOT.glob("*.md"), *ROOT.joinpath("motionviz").rglob("*.md")]
               if p not in (src_path, dst_path)]
    moved_re = "|".join(re.escape(n) for n in sorted(all_moved, key=len, reverse=True))
    for p in targets:
        text = p.read_text(encoding="utf-8")
        new = re.sub(re.escape(src_mod) + r"([.:])(" + moved_re + r")\b", dst_mod + r"\1\2", text)
        if p.suffix == ".py":
            new = fix_from_imports(p, new, src_mod, dst_mod, all_moved, mods)
            new = fix_module_aliases(p, new, src_mod, dst_mod, all_moved, mods, suffix)
        if new != text:
            p.write_text(new, encoding="utf-8")
            print("rewrote", p.relative_to(ROOT))
    return 0


def fix_from_imports(p: Path, text: str, src_mod: str, dst_mod: str, moved: set[str], mods) -> str:
    """``from <src> import a, moved_b`` -> two imports (single-line statements; others are reported)."""
    tree = ast.parse(text)
    lines = text.split("\n")
    here = next((m for m, f in mods.items() if f == p), None)
    is_pkg = p.name == "__init__.py"
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)), key=lambda n: -n.lineno):
        if absolute(here, is_pkg, node) != src_mod:
            continue
        mv = [a for a in node.names if a.name in moved]
        if not mv:
            continue
        st = [a for a in node.names if a.name not in moved]
        indent = lines[node.lineno - 1][: node.col_offset]

        def render(mod: str, al) -> str:
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in al)
            if node.level:
                level, rest = relative(here, is_pkg, mod)
                return f"{indent}from {'.' * level}{rest} import {names}"
            return f"{indent}from {mod} import {names}"

        new = ([render(src_mod, st)] if st else []) + [render(dst_mod, mv)]
        lines[node.lineno - 1: node.end_lineno] = new
    return "\n".join(lines)


def fix_module_aliases(p: Path, text: str, src_mod: str, dst_mod: str, moved: set[str], mods, suffix: str) -> str:
    """``import src as A`` / ``from pkg import src [as A]`` and ``A.moved_name`` used -> also import the
    destination module (as ``A + suffix``) next to it and use it for the moved names."""
    here = next((m for m, f in mods.items() if f == p), None)
    is_pkg = p.name == "__init__.py"
    lines = text.split("\n")
    tree = ast.parse(text)
    inserts = []
    moved_re = "|".join(re.escape(n) for n in sorted(moved, key=len, reverse=True))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pairs = [(a.name, a.asname) for a in node.names if a.asname]
        elif isinstance(node, ast.ImportFrom):
            target = absolute(here, is_pkg, node)
            if target is None:
                continue
            pairs = [(f"{target}.{a.name}", a.asname or a.name) for a in node.names]
        else:
            continue
        for full, alias in pairs:
            if full != src_mod or not re.search(r"(?<![\w.])" + re.escape(alias) + r"\.(" + moved_re + r")\b", text):
                continue
            new_alias = alias + suffix
            parent, leaf = dst_mod.rsplit(".", 1)
            indent = lines[node.lineno - 1][: node.col_offset]
            if isinstance(node, ast.ImportFrom) and node.level:
                level, rest = relative(here, is_pkg, parent)
                line = f"{indent}from {'.' * level}{rest} import {leaf} as {new_alias}"
            else:
                line = f"{indent}from {parent} import {leaf} as {new_alias}"
            inserts.append((node.end_lineno, line))
            text_re = re.compile(r"(?<![\w.])" + re.escape(alias) + r"\.(" + moved_re + r")\b")
            lines = [text_re.sub(new_alias + r".\1", ln) for ln in lines]
    for at, line in sorted(inserts, reverse=True):
        lines.insert(at, line)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
