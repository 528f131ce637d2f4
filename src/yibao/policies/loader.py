"""Read policy files (YAML) from disk: the built-in ones shipped with yibao, or a given file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from yibao.domain.errors import PolicyError
from yibao.domain.policy import Policy
from yibao.policies.schema import policy_from_mapping

BUILTIN_DIR = Path(__file__).resolve().parent


def load_policy_file(path: str | Path) -> Policy:
    """Load and validate one file; errors name the file and the field."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(str(p), "policy_unreadable", f"无法读取策略文件：{exc.strerror}", f"cannot read policy file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p.name}:{mark.line + 1}:{mark.column + 1}" if mark else p.name
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(where, "policy_yaml", f"YAML 格式错误：{problem}", f"invalid YAML: {problem}") from None
    return policy_from_mapping(data, p.name, raw)


@lru_cache(maxsize=64)
def _builtin(region: str, year: int) -> Policy | None:
    path = BUILTIN_DIR / f"{region}-{year}.yaml"
    return load_policy_file(path) if path.exists() else None


def builtin_policy(region: str, year: int) -> Policy | None:
    """The shipped policy for a region and year, or None."""
    return _builtin(region, year)


def builtin_policies() -> list[Policy]:
    return [load_policy_file(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
