#!/usr/bin/env python3
"""The house rules, read from the code's imports and statements (docs/architecture.md says why).

Run by `make test` (tests/test_architecture.py) and on its own: `python scripts/check_architecture.py`
prints every breach and exits 1 if there is one. The rules:

1. No import circle between files (imports under `if TYPE_CHECKING:` aside; imports inside
   functions count: a circle there still couples the two files).
2. The domain imports only the domain.
3. The HTTP API (`api/`) and the pages (`web/`) never import each other (nor `fsi/`, their sibling).
4. No production module imports the sandbox wing (`yibao.sandbox`): only the composition root
   (`yibao.app`) and the CLI (`yibao.cli`) may.
5. Layers point down: services import no entrypoint, no runtime and not the root; the runtime
   imports no entrypoint; adapters (store, channels, face, sms, crypto, policies, formats, observe) import none of those.
6. `services/` holds capability packages only, not modules.
7. A table is written only by the package that owns it (`info={"owner": ...}` in store/tables.py).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "yibao"

ENTRYPOINTS = ("yibao.api", "yibao.web", "yibao.fsi")
ROOT = ("yibao.app", "yibao.cli")
ADAPTERS = ("yibao.store", "yibao.channels", "yibao.face", "yibao.sms", "yibao.crypto", "yibao.policies", "yibao.formats", "yibao.observe")
SANDBOX = "yibao.sandbox"
MAY_IMPORT_SANDBOX = ROOT


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    imports: set[str] = field(default_factory=set)


def load(src: Path = SRC) -> dict[str, Module]:
    mods: dict[str, Module] = {}
    for path in sorted((src / PKG).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        mods[".".join(parts)] = Module(".".join(parts), path, is_package, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    for m in mods.values():
        m.imports = _imports(m, mods)
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def _resolve(name: str, mods: dict[str, Module]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


_FACTORY = re.compile(r"^(yibao(?:\.\w+)*):\w+$")  # "yibao.app:app_from_env": a module named to be imported by a server


def _relative(m: Module, level: int, module: str | None) -> str:
    here = m.name.split(".") if m.is_package else m.name.split(".")[:-1]
    here = here[: len(here) - (level - 1)]
    return ".".join(here + ([module] if module else []))


def _imports(m: Module, mods: dict[str, Module]) -> set[str]:
    skip = _type_checking_nodes(m.tree)
    found: set[str] = set()
    for node in ast.walk(m.tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Call) and _call_name(node) in ("import_module", "__import__") and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            targets = [node.args[0].value]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _FACTORY.match(node.value):
            targets = [_FACTORY.match(node.value).group(1)]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _relative(m, node.level, node.module) if node.level else node.module or ""
            # `from pkg import mod` imports pkg.mod; `from mod import name` imports mod.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for t in targets:
            if _within(t, PKG):
                resolved = _resolve(t, mods)
                if resolved and resolved != m.name:
                    found.add(resolved)
    return found


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def cycles(mods: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of more than one file (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in mods:
        if start in index:
            continue
        work = [(start, iter(sorted(mods[start].imports)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(mods[w].imports))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def import_breaches(mods: dict[str, Module]) -> list[str]:
    out = []
    for m in mods.values():
        for t in sorted(m.imports):
            if _within(m.name, "yibao.domain") and not _within(t, "yibao.domain"):
                out.append(f"the domain imports only the domain: {m.name} imports {t}")
            for a in ENTRYPOINTS:
                for b in ENTRYPOINTS:
                    if a != b and _within(m.name, a) and _within(t, b):
                        out.append(f"entrypoints are siblings: {m.name} imports {t}")
            if _within(t, SANDBOX) and not _within(m.name, SANDBOX) and not _within(m.name, MAY_IMPORT_SANDBOX):
                out.append(f"production code never imports the sandbox wing: {m.name} imports {t}")
            if _within(m.name, "yibao.services") and _within(t, (*ENTRYPOINTS, *ROOT, "yibao.runtime")):
                out.append(f"services import no entrypoint, runtime or root: {m.name} imports {t}")
            if _within(m.name, "yibao.runtime") and _within(t, (*ENTRYPOINTS, *ROOT)):
                out.append(f"the runtime imports no entrypoint or root: {m.name} imports {t}")
            if _within(m.name, ADAPTERS) and _within(t, ("yibao.services", "yibao.runtime", *ENTRYPOINTS, *ROOT)):
                out.append(f"adapters import no service, runtime, entrypoint or root: {m.name} imports {t}")
    return out


def layout_breaches(src: Path = SRC) -> list[str]:
    services = src / PKG / "services"
    out = []
    for p in sorted(services.iterdir()):
        if p.name in ("__init__.py", "__pycache__"):
            continue
        if p.is_file() and p.suffix == ".py":
            out.append(f"services/ holds capability packages, not modules: services/{p.name}")
        elif p.is_dir() and not (p / "__init__.py").exists():
            out.append(f"services/{p.name} is not a package (no __init__.py)")
    return out


# ---- table ownership -------------------------------------------------------------------------------

_SQL_WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?|"
                        r"REPLACE\s+INTO|MERGE\s+INTO)\s+(?:\"?\w+\"?\.)?\"?([a-z_][a-z0-9_]*)\"?", re.I)
_WRITE_FUNCS = {"insert", "update", "delete", "insert_ignore"}  # sqlalchemy's (any dialect's) and store/upsert.py's


def table_owners(src: Path = SRC) -> dict[str, str]:
    """Each table's owner, as declared beside it in store/tables.py (`info={"owner": "services.payments"}`)."""
    tree = ast.parse((src / PKG / "store" / "tables.py").read_text(encoding="utf-8"))
    owners: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) == "Table" and node.args:
            name = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
            owner = None
            for kw in node.keywords:
                if kw.arg == "info" and isinstance(kw.value, ast.Dict):
                    for k, v in zip(kw.value.keys, kw.value.values):
                        if isinstance(k, ast.Constant) and k.value == "owner" and isinstance(v, ast.Constant):
                            owner = v.value
            if name:
                owners[name] = owner or ""
    return owners


def _writes(m: Module, table_names: set[str]) -> tuple[set[str], list[str]]:
    """Tables this module inserts into, updates, deletes from or truncates — through SQLAlchemy (any name the
    table or the write function is reached by) or SQL text (plain, f-string, concatenated) — and the ways of
    reaching tables this checker cannot follow, reported as breaches themselves."""
    TABLES = "yibao.store.tables"
    alias: dict[str, str] = {}  # local name -> table
    modules: set[str] = set()  # local names bound to the tables module ("" for the dotted yibao.store.tables)
    writers = set(_WRITE_FUNCS)  # local names of write functions (insert as ins, pg_insert …)
    opaque: list[str] = []
    for node in ast.walk(m.tree):
        if isinstance(node, ast.ImportFrom):
            base = _relative(m, node.level, node.module) if node.level else node.module or ""
            for a in node.names:
                if base == TABLES and a.name == "*":
                    opaque.append(f"{m.name} imports every table with *: import tables by name")
                elif base == TABLES and a.name in table_names:
                    alias[a.asname or a.name] = a.name
                elif base == "yibao.store" and a.name == "tables":
                    modules.add(a.asname or a.name)
                elif a.name in _WRITE_FUNCS and base.startswith(("sqlalchemy", "yibao.store")):
                    writers.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == TABLES:
                    modules.add(a.asname or "")

    def table_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name) and node.id in alias:
            return alias[node.id]
        if isinstance(node, ast.Attribute) and node.attr in table_names:
            owner = ast.unparse(node.value)
            if owner in modules or ("" in modules and owner == TABLES):
                return node.attr
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "tables":
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in table_names:
                return key.value  # metadata.tables["transfers"]
        return None

    for node in ast.walk(m.tree):  # X = T: X is the table too (to a fixed point: X = T; Y = X)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found_table = table_of(node.value)
            if found_table:
                alias[node.targets[0].id] = found_table

    def text_of(node: ast.AST) -> str | None:
        """The SQL a string expression spells: constants, f-strings (a table's name filled in), concatenations."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                else:
                    inner = v.value if isinstance(v, ast.FormattedValue) else v
                    named = table_of(inner.value) if isinstance(inner, ast.Attribute) and inner.attr == "name" else table_of(inner)
                    parts.append(named or "{}")
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = text_of(node.left), text_of(node.right)
            return left + right if left is not None and right is not None else None
        return None

    found: set[str] = set()
    for node in ast.walk(m.tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in writers:
                for arg in [*node.args, *(k.value for k in node.keywords)]:  # insert(T), insert_ignore(conn, table=T), dialect.insert(T)
                    hit = table_of(arg)
                    if hit:
                        found.add(hit)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("insert", "update", "delete"):  # T.insert() …
                hit = table_of(node.func.value)
                if hit:
                    found.add(hit)
        sql = text_of(node) if isinstance(node, (ast.Constant, ast.JoinedStr, ast.BinOp)) else None
        if sql:
            for match in _SQL_WRITE.finditer(sql):
                if match.group(1) in table_names:
                    found.add(match.group(1))
    return found, opaque


def ownership_breaches(mods: dict[str, Module], src: Path = SRC) -> list[str]:
    owners = table_owners(src)
    out = [f"table {t} names no owner (info={{'owner': ...}} in store/tables.py)" for t, o in sorted(owners.items()) if not o]
    for m in mods.values():
        if _within(m.name, "yibao.store"):
            continue  # migrations and the store's own helpers
        written, opaque = _writes(m, set(owners))
        out += opaque
        for t in sorted(written):
            owner = f"{PKG}.{owners[t]}" if owners[t] else ""
            if owner and not _within(m.name, owner):
                out.append(f"table {t} is written only by {owners[t]}: {m.name} writes it")
    return out


def breaches(src: Path = SRC) -> list[str]:
    mods = load(src)
    out = [f"import circle: {' -> '.join(c)}" for c in cycles(mods)]
    out += import_breaches(mods)
    out += layout_breaches(src)
    out += ownership_breaches(mods, src)
    return out


def main() -> int:
    found = breaches()
    for line in found:
        print(line)
    print(f"{len(found)} breach(es) of the house rules" if found else "the house rules hold")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
