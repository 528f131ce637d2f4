"""What production needs before it serves, checked at start-up (`yibao serve` without --demo, and the app
factory each worker process runs): operator credentials of a minimum strength and the master key from
outside the code. Each missing or weak thing is one `YibaoError` naming the variable and what to do, in
Chinese and English; nothing is guessed, generated or defaulted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from yibao.crypto.files import readable_by_others
from yibao.crypto.pii import load_keyring
from yibao.domain.errors import Conflict, InputError, YibaoError
from yibao.runtime import marks
from yibao.store.db import Database

DEMO_OPERATOR_TOKEN = "demo-operator-token"  # printed in the README: the demo's, never production's
DEMO_CHECKER_TOKEN = "demo-checker-token"  # the demo's second operator, who approves what the first requests (maker-checker)
TOKEN_MIN_LENGTH = 32
TOKEN_MIN_DISTINCT = 12  # `openssl rand -hex 32` has ~16 different characters; "aaaa…" or a word repeated has few
TOKEN_RULE_ZH = f"每个令牌至少{TOKEN_MIN_LENGTH}个字符、含至少{TOKEN_MIN_DISTINCT}种不同字符，如 openssl rand -hex 32 生成的"
TOKEN_RULE_EN = (f"each token at least {TOKEN_MIN_LENGTH} characters, of at least {TOKEN_MIN_DISTINCT} different characters, "
                 "e.g. from openssl rand -hex 32")


def _weak(name: str, zh: str, en: str) -> InputError:
    return InputError("YIBAO_ADMIN_TOKENS", "weak_operator_token", f"经办人员 {name} 的令牌{zh}（{TOKEN_RULE_ZH}）",
                      f"operator {name}'s token {en} ({TOKEN_RULE_EN})")


def operator_tokens(raw: str, *, demo: bool) -> dict[str, str]:
    """sha256(token) -> operator name, from ``raw`` ("name:token,name2:token2", YIBAO_ADMIN_TOKENS).

    Production (``demo`` False) refuses a malformed entry or a weak token with an `InputError` (naming the
    operator, never the token) and never knows the demo's token. The demo uses the given tokens as they
    are, and `demo-operator-token` when none is given."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, token = item.partition(":")
        name, token = name.strip(), token.strip()
        if not demo:
            if not sep or not name or not token:
                raise InputError("YIBAO_ADMIN_TOKENS", "invalid_operator_token", "应为 名称:令牌，多个以逗号分隔",
                                 "must be name:token, several separated by commas")
            if token in (DEMO_OPERATOR_TOKEN, DEMO_CHECKER_TOKEN):
                raise _weak(name, "是公开的演示令牌", "is the public demo token")
            if len(token) < TOKEN_MIN_LENGTH:
                raise _weak(name, f"只有{len(token)}个字符", f"has only {len(token)} characters")
            if len(set(token)) < TOKEN_MIN_DISTINCT:
                raise _weak(name, f"只含{len(set(token))}种不同字符", f"has only {len(set(token))} different characters")
        tokens[hashlib.sha256(token.encode()).hexdigest()] = name
    if not tokens and demo:
        tokens[hashlib.sha256(DEMO_OPERATOR_TOKEN.encode()).hexdigest()] = "demo-operator"
        tokens[hashlib.sha256(DEMO_CHECKER_TOKEN.encode()).hexdigest()] = "demo-checker"
    return tokens


def problems(environ: Mapping[str, str] | None = None, *, sqlite_path: str | None = None) -> list[YibaoError]:
    """Everything production lacks, one error per missing thing (empty: it may start)."""
    env = os.environ if environ is None else environ
    found: list[YibaoError] = []
    raw = env.get("YIBAO_ADMIN_TOKENS", "")
    try:
        if not operator_tokens(raw, demo=False):
            found.append(InputError("YIBAO_ADMIN_TOKENS", "operator_tokens_required",
                                    f"生产模式需要经办人员凭证：设置 YIBAO_ADMIN_TOKENS=名称:令牌（{TOKEN_RULE_ZH}）",
                                    f"production needs operator credentials: set YIBAO_ADMIN_TOKENS=name:token ({TOKEN_RULE_EN})"))
    except YibaoError as exc:
        found.append(exc)
    try:
        load_keyring(create=False, environ=env)
    except YibaoError as exc:
        found.append(exc)
    metrics = env.get("YIBAO_METRICS_TOKEN", "")  # optional: without it production serves no /metrics (runtime/scrape.py)
    if metrics and (len(metrics) < TOKEN_MIN_LENGTH or len(set(metrics)) < TOKEN_MIN_DISTINCT or metrics == "demo-metrics-token"
                    or any(metrics == part.partition(":")[2].strip() for part in raw.split(","))):
        found.append(InputError("YIBAO_METRICS_TOKEN", "weak_metrics_token",
                                f"监控令牌太弱或与经办人员令牌相同（{TOKEN_RULE_ZH}，且不同于任何经办人员令牌）",
                                f"the metrics token is weak or an operator's token ({TOKEN_RULE_EN}, and no operator's token)"))
    return found + file_problems(sqlite_path)


def file_problems(sqlite_path: str | None) -> list[YibaoError]:
    """A SQLite database others may read (made by an earlier version, or by hand): refused, naming the chmod."""
    if not sqlite_path:
        return []
    exposed = [p for p in (sqlite_path, f"{sqlite_path}-wal", f"{sqlite_path}-shm") if os.path.exists(p) and readable_by_others(p)]
    if not exposed:
        return []
    files = " ".join(exposed)
    return [InputError("database", "database_file_exposed", f"数据库文件可被其他用户读取，请先运行：chmod 600 {files}",
                       f"the database files can be read by other users; run: chmod 600 {files}")]

def database_problems(db: Database) -> list[YibaoError]:
    """What production refuses in a (migrated) database: the demo's, whose credentials anyone can read."""
    if db.run(marks.is_demo, write=False):
        return [Conflict("database", "demo_database", "该数据库载有演示数据，其凭证是公开的，生产模式拒绝使用：请为生产另用一个数据库，或以 --demo 运行演示",
                         "this database holds the demo world, whose credentials are public: production refuses it; give production "
                         "a database of its own, or run the demo with --demo")]
    return []
