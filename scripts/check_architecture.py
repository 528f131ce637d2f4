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
   imports no entrypoint; adapters (store, channels, face, crypto, policies, formats) import none of those.
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
ADAPTERS = ("yibao.store", "yibao.channels", "yibao.face", "yibao.crypto", "yibao.policies", "yibao.formats")
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
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def _resolve(name: str, mods: dict[str, Module]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports(m: Module, mods: dict[str, Module]) -> set[str]:
    skip = _type_checking_nodes(m.tree)
    found: set[str] = set()
    for node in ast.walk(m.tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = m.name.split(".") if m.is_package else m.name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join(here + ([base] if base else []))
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

_SQL_WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_][a-z0-9_]*)", re.I)


def table_owners(src: Path = SRC) -> dict[str, str]:
    """Each table's owner, as declared beside it in store/tables.py (`info={"owner": "services.payments"}`)."""
    tree = ast.parse((src / PKG / "store" / "tables.py").read_text(encoding="utf-8"))
    owners: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Table" and node.args:
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


def _writes(m: Module, table_names: set[str]) -> set[str]:
    """Tables this module inserts into, updates or deletes from (SQLAlchemy Core or SQL text)."""
    alias: dict[str, str] = {}
    module_alias: set[str] = set()
    for node in ast.walk(m.tree):
        if isinstance(node, ast.ImportFrom) and node.module == "yibao.store.tables":
            for a in node.names:
                if a.name in table_names:
                    alias[a.asname or a.name] = a.name
        if isinstance(node, ast.ImportFrom) and node.module == "yibao.store":
            module_alias.update(a.asname or a.name for a in node.names if a.name == "tables")

    def table_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name) and node.id in alias:
            return alias[node.id]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_alias:
            return node.attr if node.attr in table_names else None
        return None

    found: set[str] = set()
    for node in ast.walk(m.tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in ("insert", "update", "delete", "insert_ignore"):
                for arg in node.args[:2]:  # insert(T) / insert_ignore(conn, T, …) / dialect.insert(T)
                    t = table_of(arg)
                    if t:
                        found.add(t)
                if isinstance(f, ast.Attribute):  # T.insert() / T.update() / T.delete()
                    t = table_of(f.value)
                    if t:
                        found.add(t)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in _SQL_WRITE.finditer(node.value):
                if match.group(1) in table_names:
                    found.add(match.group(1))
    return found


def ownership_breaches(mods: dict[str, Module], src: Path = SRC) -> list[str]:
    owners = table_owners(src)
    out = [f"table {t} names no owner (info={{'owner': ...}} in store/tables.py)" for t, o in sorted(owners.items()) if not o]
    for m in mods.values():
        if _within(m.name, "yibao.store"):
            continue  # migrations and the store's own helpers
        for t in sorted(_writes(m, set(owners))):
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
