"""The house rules (docs/architecture.md), read from the code: scripts/check_architecture.py on the real
tree — and on a small planted tree, to show that each rule does catch its breach."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_architecture.py"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_architecture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_architecture"] = module
    spec.loader.exec_module(module)
    return module


def test_the_house_rules_hold(checker):
    assert checker.breaches() == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "yibao" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


CLEAN = {
    "__init__.py": "",
    "domain/__init__.py": "",
    "domain/money.py": "",
    "services/__init__.py": "",
    "services/books/__init__.py": "",
    "services/books/ledger.py": "from yibao.store.tables import transfers as T\ndef post(c):\n    c.execute(T.insert())\n",
    "store/__init__.py": "",
    "store/tables.py": 'transfers = Table(\n    "transfers", metadata, info={"owner": "services.books"},\n)\n',
    "api/__init__.py": "",
    "web/__init__.py": "",
    "sandbox/__init__.py": "",
    "app.py": "import yibao.sandbox\n",
}


def test_a_clean_planted_tree_passes(checker, tmp_path):
    assert checker.breaches(_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize(("files", "expected"), [
    ({"domain/money.py": "import yibao.services.books.ledger\n"}, "the domain imports only the domain"),
    ({"api/views.py": "from yibao.web import x\n"}, "entrypoints are siblings"),
    ({"web/page.py": "from yibao.sandbox import demo\n"}, "production code never imports the sandbox wing"),
    ({"services/books/audit.py": "from yibao.api import deps\n"}, "services import no entrypoint"),
    ({"store/db.py": "from yibao.services.books import ledger\n"}, "adapters import no service"),
    ({"services/ledger.py": ""}, "services/ holds capability packages, not modules"),
    ({"services/care/__init__.py": "", "services/care/visits.py": "from yibao.store import tables\n"
      "def f(c):\n    c.execute(tables.transfers.update())\n"}, "table transfers is written only by services.books"),
    ({"services/care/__init__.py": "", "services/care/visits.py": 'SQL = "DELETE FROM transfers WHERE id = :id"\n'},
     "table transfers is written only by services.books"),
    ({"store/tables.py": 'transfers = Table(\n    "transfers", metadata,\n)\n'}, "names no owner"),
    ({"services/books/a.py": "from yibao.services.books import b\n", "services/books/b.py": "def f():\n    from yibao.services.books import a\n"},
     "import circle"),
])
def test_each_rule_catches_its_breach(checker, tmp_path, files, expected):
    found = checker.breaches(_tree(tmp_path, {**CLEAN, **files}))
    assert any(expected in line for line in found), found


def test_imports_under_type_checking_are_not_circles(checker, tmp_path):
    files = {"services/books/a.py": "from yibao.services.books import b\n",
             "services/books/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from yibao.services.books import a\n"}
    assert checker.breaches(_tree(tmp_path, {**CLEAN, **files})) == []


V = "services/care/visits.py"
# Ways to break a rule that a first version of the checker did not see (found by trying to fool it).
DISGUISED = {
    "update only": {V: 'from sqlalchemy import text\ndef f(c):\n    c.execute(text("UPDATE ONLY transfers SET amount = 0"))\n'},
    "quoted name": {V: 'from sqlalchemy import text\ndef f(c):\n    c.execute(text(\'UPDATE "transfers" SET amount = 0\'))\n'},
    "schema-qualified": {V: 'from sqlalchemy import text\ndef f(c):\n    c.execute(text("DELETE FROM public.transfers"))\n'},
    "insert or ignore": {V: 'from sqlalchemy import text\ndef f(c):\n    c.execute(text("INSERT OR IGNORE INTO transfers (id) VALUES (1)"))\n'},
    "f-string": {V: 'from yibao.store.tables import transfers as T\ndef f(c):\n    c.execute(f"DELETE FROM {T.name}")\n'},
    "concatenation": {V: 'def f(c):\n    c.execute("DELETE FROM " + "transfers")\n'},
    "truncate": {V: 'def f(c):\n    c.execute("TRUNCATE transfers")\n'},
    "insert under another name": {V: 'from sqlalchemy import insert as ins\nfrom yibao.store.tables import transfers as T\n'
                                     'def f(c):\n    c.execute(ins(T).values(id=1))\n'},
    "a dialect's insert": {V: 'from sqlalchemy.dialects.postgresql import insert as pg_insert\nfrom yibao.store.tables import transfers as T\n'
                              'def f(c):\n    c.execute(pg_insert(T).values(id=1).on_conflict_do_nothing())\n'},
    "star import": {V: 'from yibao.store.tables import *\ndef f(c):\n    c.execute(transfers.delete())\n'},
    "module alias": {V: 'import yibao.store.tables as tables\ndef f(c):\n    c.execute(tables.transfers.update())\n'},
    "dotted name": {V: 'import yibao.store.tables\ndef f(c):\n    c.execute(yibao.store.tables.transfers.delete())\n'},
    "relative import": {V: 'from ...store.tables import transfers as T\ndef f(c):\n    c.execute(T.delete())\n'},
    "rebound name": {V: 'from yibao.store.tables import transfers as T\nX = T\ndef f(c):\n    c.execute(X.delete())\n'},
    "metadata lookup": {V: 'from yibao.store.tables import metadata\ndef f(c):\n    c.execute(metadata.tables["transfers"].delete())\n'},
    "keyword argument": {V: 'from yibao.store.upsert import insert_ignore\nfrom yibao.store.tables import transfers as T\n'
                            'def f(c):\n    insert_ignore(c, table=T, values={})\n'},
    "sa.Table without an owner": {"store/tables.py": 'import sqlalchemy as sa\ntransfers = sa.Table("transfers", metadata)\n'},
    "import_module": {"web/page.py": 'import importlib\ndemo = importlib.import_module("yibao.sandbox")\n'},
    "if not TYPE_CHECKING": {"services/books/audit.py": 'from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    from yibao.api import deps\n'},
    "a factory string": {"runtime/__init__.py": "", "runtime/server.py": 'FACTORY = "yibao.app:app_from_env"\n'},
}


@pytest.mark.parametrize("how", sorted(DISGUISED))
def test_a_disguised_breach_is_still_caught(checker, tmp_path, how):
    files = {**CLEAN, "services/care/__init__.py": "", **DISGUISED[how]}
    assert checker.breaches(_tree(tmp_path, files)) != [], how
