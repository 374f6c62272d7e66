"""Move modules of the package and rewrite every import of them (no compatibility shims).

    python tools/move.py motionviz.core.skeleton=motionviz.core.skeleton [OLD=NEW ...] [--dry-run]

1. ``git mv`` each module file (a package's ``__init__.py`` when NEW is to be a package: ``NEW/`` then
   holds it); missing package folders get an ``__init__.py`` with a one-line docstring.
2. Every dotted reference ``motionviz.OLD[.x]`` in ``*.py``, ``*.md``, ``*.toml`` and ``.ci/run`` becomes
   ``motionviz.NEW[.x]`` (absolute imports, monkeypatch targets, string tables such as ``VERBS``), and
   ``motionviz/OLD.py`` paths in the text become the new file's path.
3. Relative imports (and ``from motionviz import <module>``) are resolved with the files' old locations and
   written again relative to their new ones.

Prints what it could not rewrite (for a hand fix).  AST + text only; imports nothing of the package.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT_FILES = ("*.py", "*.md", "*.toml")


def module_files() -> dict[str, Path]:
    out = {}
    for p in sorted((ROOT / "motionviz").rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def absolute(here: str | None, is_pkg: bool, node: ast.ImportFrom) -> str | None:
    """The module a ``from ... import`` statement in module ``here`` names (None: relative, ``here`` unknown)."""
    if not node.level:
        return node.module or ""
    if here is None:
        return None
    base = here.split(".") if is_pkg else here.split(".")[:-1]
    return ".".join(base[: len(base) - (node.level - 1)] + ([node.module] if node.module else []))


def remap(name: str, moves: dict[str, str]) -> str:
    for old in sorted(moves, key=len, reverse=True):
        if name == old or name.startswith(old + "."):
            return moves[old] + name[len(old):]
    return name


def target_path(new: str, is_pkg: bool) -> Path:
    parts = new.split(".")
    return ROOT.joinpath(*parts, "__init__.py") if is_pkg else ROOT.joinpath(*parts[:-1], parts[-1] + ".py")


def relative(from_mod: str, from_is_pkg: bool, target: str) -> tuple[int, str]:
    pkg = from_mod.split(".") if from_is_pkg else from_mod.split(".")[:-1]
    tp = target.split(".")
    common = 0
    while common < min(len(pkg), len(tp)) and pkg[common] == tp[common]:
        common += 1
    return len(pkg) - common + 1, ".".join(tp[common:])


def main(argv: list[str]) -> int:
    dry = "--dry-run" in argv
    moves = dict(a.split("=", 1) for a in argv if "=" in a)
    to_pkg = {o for o, n in moves.items() if n.endswith(".__init__")}
    moves = {o: n.removesuffix(".__init__") for o, n in moves.items()}
    mods = module_files()
    for old in moves:
        if old not in mods:
            raise SystemExit(f"no module {old}")
    new_of_file: dict[Path, tuple[str, str, bool]] = {}     # current path -> (old mod, new mod, is_pkg)
    for mod, p in mods.items():
        new_of_file[p] = (mod, remap(mod, moves), p.name == "__init__.py" or mod in to_pkg)
    files = [p for pat in TEXT_FILES for p in ROOT.rglob(pat) if ".venv" not in p.parts and ".git" not in p.parts]
    files += [ROOT / ".ci" / "run"]
    problems: list[str] = []

    # ---- 3 (computed first, on the old tree): relative imports and `from motionviz import <module>` ----
    edits: dict[Path, list[tuple[int, str, str]]] = {}        # path -> (line index, old text, new text)
    for p in sorted(set(files)):
        if p.suffix != ".py":
            continue
        src = p.read_text(encoding="utf-8")
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        old_mod, new_mod, new_is_pkg = new_of_file.get(p, (None, None, False))
        is_pkg = p.name == "__init__.py"
        lines = src.split("\n")
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = absolute(old_mod, is_pkg, node)
            if target is None or (not node.level and target != "motionviz"):
                continue
            # per imported name: the module it lives in, after the moves
            homes, renamed = set(), {}
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in mods:
                    new_sub = remap(sub, moves)
                    parent, leaf = new_sub.rsplit(".", 1)
                    homes.add(parent)
                    if leaf != a.name:
                        renamed[a.name] = leaf
                else:
                    homes.add(remap(target, moves))
            if len(homes) != 1:
                problems.append(f"{p.relative_to(ROOT)}:{node.lineno}: names go to {sorted(homes)}")
                continue
            home = homes.pop()
            if node.level:
                level, rest = relative(new_mod, new_is_pkg, home)
                text = "." * level + rest
            else:
                text = home
            old_text = ("." * node.level) + (node.module or "")
            if text == old_text and not renamed:
                continue
            i = node.lineno - 1
            m = re.compile(r"from\s+" + re.escape(old_text) + r"\s+import\s").search(lines[i], node.col_offset)
            if m is None:
                problems.append(f"{p.relative_to(ROOT)}:{node.lineno}: cannot find the import text")
                continue
            new_line = lines[i][: m.start()] + f"from {text} import " + lines[i][m.end():]
            for a_old, a_new in renamed.items():
                alias = next(a for a in node.names if a.name == a_old)
                if node.end_lineno != node.lineno:
                    problems.append(f"{p.relative_to(ROOT)}:{node.lineno}: rename {a_old} -> {a_new} by hand")
                    continue
                repl = a_new if alias.asname else f"{a_new} as {a_old}"
                new_line = re.sub(r"(?<=[\s,(])" + re.escape(a_old) + r"\b", repl, new_line, count=1)
            edits.setdefault(p, []).append((i, lines[i], new_line))

    # ---- 2: dotted names and paths in the text --------------------------------------------------------
    olds = sorted(moves, key=len, reverse=True)
    dotted = re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in olds) + r")(?![\w])")
    paths = {}
    for o, n in moves.items():
        is_pkg = mods[o].name == "__init__.py" or o in to_pkg
        src_path = mods[o].relative_to(ROOT).as_posix()
        paths[src_path] = target_path(n, is_pkg).relative_to(ROOT).as_posix()
        if mods[o].name == "__init__.py":
            paths[src_path.rsplit("/", 1)[0] + "/"] = target_path(n, True).parent.relative_to(ROOT).as_posix() + "/"
    path_re = re.compile(r"(?<![\w/])(" + "|".join(re.escape(k) for k in sorted(paths, key=len, reverse=True)) + r")")
    changed: dict[Path, str] = {}
    for p in sorted(set(files)):
        if not p.is_file():
            continue
        src = p.read_text(encoding="utf-8")
        lines = src.split("\n")
        done = {}
        for i, before, after in edits.get(p, []):
            assert lines[i] == before
            done[i] = after                       # already in terms of the new names
        lines = [done[i] if i in done else path_re.sub(lambda m: paths[m.group(1)],
                                                       dotted.sub(lambda m: moves[m.group(1)], line))
                 for i, line in enumerate(lines)]
        out = "\n".join(lines)
        if out != src:
            changed[p] = out

    for line in problems:
        print("FIX BY HAND:", line)
    print(f"{len(changed)} files rewritten" + (" (dry run)" if dry else ""))
    if dry:
        for p in changed:
            print("  ", p.relative_to(ROOT))
        return 0
    for p, text in changed.items():
        p.write_text(text, encoding="utf-8")
    # ---- 1: move the files ----------------------------------------------------------------------------
    for o, n in moves.items():
        src = mods[o]
        dst = target_path(n, src.name == "__init__.py" or o in to_pkg)
        for folder in reversed(dst.relative_to(ROOT).parents[:-1]):
            d = ROOT / folder
            d.mkdir(exist_ok=True)
            init = d / "__init__.py"
            if not init.exists() and init != dst:
                init.write_text(f'"""{folder.as_posix().replace("/", ".")}."""\n', encoding="utf-8")
                subprocess.run(["git", "-C", str(ROOT), "add", str(init)], check=True)
        subprocess.run(["git", "-C", str(ROOT), "mv", str(src), str(dst)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
