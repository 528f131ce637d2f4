"""What production needs before it serves (runtime/production.py): operator tokens of the documented strength,
the master key from outside (never generated), a database file others cannot read."""

from __future__ import annotations

import hashlib

import pytest

from yibao.domain.errors import InputError
from yibao.runtime import production

STRONG = "3f9c1a7e5b2d4086c1e9f7a3b5d20c4e"  # 32 characters, 15 different
KEY = "00" * 32


def test_operator_tokens_of_the_documented_strength_are_accepted():
    tokens = production.operator_tokens(f"alice:{STRONG}, bob:{STRONG[::-1]}", demo=False)
    assert sorted(tokens.values()) == ["alice", "bob"]
    assert hashlib.sha256(STRONG.encode()).hexdigest() in tokens


@pytest.mark.parametrize("raw, says", [
    ("op:a", "has only 1 characters"),
    ("op:" + "ab" * 16, "has only 2 different characters"),
    ("op:" + STRONG[:31], "has only 31 characters"),
    ("op:demo-operator-token", "is the public demo token"),
    ("op" + STRONG, "must be name:token"),
    (f":{STRONG}", "must be name:token"),
    (f"alice:{STRONG},bob:short", "operator bob's token has only 5 characters"),
])
def test_a_weak_or_malformed_operator_token_is_refused_in_production(raw, says):
    with pytest.raises(InputError) as refused:
        production.operator_tokens(raw, demo=False)
    assert refused.value.field == "YIBAO_ADMIN_TOKENS" and says in refused.value.message_en
    assert refused.value.message_zh and STRONG not in refused.value.describe() and "short" not in refused.value.describe()


def test_the_demo_tokens_only_in_the_demo():
    demo_hash = hashlib.sha256(b"demo-operator-token").hexdigest()
    checker_hash = hashlib.sha256(b"demo-checker-token").hexdigest()  # the demo's second operator (maker-checker)
    assert production.operator_tokens("", demo=True) == {demo_hash: "demo-operator", checker_hash: "demo-checker"}
    assert production.operator_tokens("", demo=False) == {}
    with pytest.raises(InputError):
        production.operator_tokens("bob:demo-checker-token", demo=False)


def test_production_says_each_missing_thing(tmp_path):
    missing = production.problems({})
    assert [p.field for p in missing] == ["YIBAO_ADMIN_TOKENS", "YIBAO_SECRET_KEY"]
    assert all(p.message_zh and p.message_en for p in missing)
    key = tmp_path / "secret.key"
    key.write_text(KEY)
    key.chmod(0o640)
    exposed = production.problems({"YIBAO_ADMIN_TOKENS": f"op:{STRONG}", "YIBAO_SECRET_FILE": str(key)})
    assert [(p.field, p.code) for p in exposed] == [("YIBAO_SECRET_FILE", "key_file_exposed")]
    assert f"chmod 600 {key}" in exposed[0].message_en
    key.chmod(0o600)
    assert production.problems({"YIBAO_ADMIN_TOKENS": f"op:{STRONG}", "YIBAO_SECRET_FILE": str(key)}) == []
    assert production.problems({"YIBAO_ADMIN_TOKENS": f"op:{STRONG}", "YIBAO_SECRET_KEY": KEY}) == []
    bad = production.problems({"YIBAO_ADMIN_TOKENS": f"op:{STRONG}", "YIBAO_SECRET_KEY": "abc"})
    assert [(p.field, p.code) for p in bad] == [("YIBAO_SECRET_KEY", "invalid_master_key")]
    assert not key.with_name(".yibao").exists()  # production generates no key


@pytest.mark.parametrize("token, ok", [("", True), ("9e1b7c3a5f2d4e6081c9a7b3f5d1e2c4", True), ("short-token", False),
                                       ("demo-metrics-token", False), (STRONG, False)], ids=["none", "strong", "short", "demo", "operator's"])
def test_a_metrics_token_is_optional_but_strong_and_never_an_operators(token, ok):
    found = production.problems({"YIBAO_ADMIN_TOKENS": f"op:{STRONG}", "YIBAO_SECRET_KEY": KEY, "YIBAO_METRICS_TOKEN": token})
    assert [(p.field, p.code) for p in found] == ([] if ok else [("YIBAO_METRICS_TOKEN", "weak_metrics_token")])


def test_a_database_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "yibao.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    [problem] = production.file_problems(str(path))
    assert problem.field == "database" and f"chmod 600 {path}" in problem.message_en
    path.chmod(0o600)
    assert production.file_problems(str(path)) == []
