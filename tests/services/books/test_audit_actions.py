"""Every action code the services write to the audit log has a name in the catalogue (domain/audit_actions.py), and
the catalogue names only codes the code emits. Read from the source: each `audit.append(..., action=...)` (and the
e-card bindings' `_audit(..., action, ...)`); a literal, or a choice of two literals, is checked as it is; an f-string is
checked with every value it can take, listed below from the code that decides it — a new f-string fails this test until
its values are listed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from yibao.domain import payment_order as po
from yibao.domain.audit_actions import NAMES, name
from yibao.services.care.settlement import REFUND_PARTS

SRC = Path(__file__).resolve().parents[3] / "src" / "yibao"

# The f-strings' values, as the code around each decides them.
DYNAMIC: dict[str, tuple[str, ...]] = {
    "benefits.{status}": ("credited", "returned"),  # services/benefits/credits.py: confirmed → credited, else returned
    "credit.{state}": ("failed",),  # services/credit/reservations.py: _void is called with "failed" only
    "face_pay.{outcome}": ("liveness_failed", "face_mismatch", "verified"),  # services/payments/face.py
    "payment.{event}": po.EVENTS,  # services/payments/orders.py: move() applies one of the domain's events
    "session.real_name_{outcome}": ("name_mismatch", "liveness_failed", "face_mismatch", "verified"),  # services/access/face_login.py
    "settlement.refund_{part}": REFUND_PARTS,
    "settlement.{reason}": ("cancel", "reversal"),  # services/care/settlement.py: _undo's two callers
}


def _literals(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        a, b = _literals(node.body), _literals(node.orelse)
        return None if a is None or b is None else a + b
    return None


def _pattern(node: ast.JoinedStr) -> str:
    """f"credit.{state}" → "credit.{state}"."""
    return "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}" for v in node.values)


def emitted() -> tuple[set[str], set[str], list[str]]:
    """(the literal codes, the f-string patterns, the call sites whose code could not be read)."""
    codes: set[str] = set()
    patterns: set[str] = set()
    unread: list[str] = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            audit_append = isinstance(f, ast.Attribute) and f.attr == "append" and isinstance(f.value, ast.Name) and f.value.id == "audit"
            binding = isinstance(f, ast.Name) and f.id == "_audit" and path.name == "bindings.py"
            if not (audit_append or binding):
                continue
            value = next((k.value for k in node.keywords if k.arg == "action"), None)
            if value is None and binding and len(node.args) > 4:
                value = node.args[4]
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            if value is None:
                unread.append(where)
            elif isinstance(value, ast.JoinedStr):
                patterns.add(_pattern(value))
            elif (found := _literals(value)) is not None:
                codes.update(found)
            elif path.name == "bindings.py" and isinstance(value, ast.Name) and value.id == "action":
                continue  # _audit's own append passes its caller's code on: read at _audit's calls
            else:
                unread.append(f"{where}: {ast.unparse(value)}")
    return codes, patterns, unread


def test_every_action_the_code_emits_has_a_name_and_every_name_is_emitted():
    codes, patterns, unread = emitted()
    assert not unread, f"audit actions that are neither a literal nor an f-string listed here: {unread}"
    assert len(codes) > 80  # the scan reads the services (a scan that finds nothing would prove nothing)
    assert patterns == set(DYNAMIC), "an f-string action code changed: list its values in DYNAMIC"
    expanded = {re.sub(r"\{\w+\}", v, p) for p, values in DYNAMIC.items() for v in values}
    every = codes | expanded
    assert sorted(every - set(NAMES)) == [], "audit actions without a name in domain/audit_actions.py"
    assert sorted(set(NAMES) - every) == [], "names of audit actions the code never emits"
    for zh, en in NAMES.values():
        assert zh and en and zh != en


def test_a_name_in_each_language_and_the_code_when_there_is_none():
    assert (name("payment_institution.suspend", "zh"), name("payment_institution.suspend", "en")) == ("支付机构暂停", "Payment institution suspended")
    assert name("retired.action", "zh") == "retired.action"
