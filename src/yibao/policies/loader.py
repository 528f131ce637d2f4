"""Read policy files (YAML) from disk: the built-in ones shipped with yibao, or a given file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from yibao.domain.errors import PolicyError
from yibao.domain.policy import Policy
from yibao.policies.schema import policy_from_mapping

BUILTIN_DIR = Path(__file__).resolve().parent


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: a second `annual_cap:` must not silently win."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def unreadable(path: Path, exc: OSError) -> tuple[str, str]:
    """A file error in words, zh and en (no errno text)."""
    if isinstance(exc, FileNotFoundError):
        return "文件不存在", "no such file"
    if isinstance(exc, IsADirectoryError):
        return "这是一个目录，不是文件", "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "没有读取权限", "permission denied"
    return "无法读取", f"cannot read ({exc.strerror or type(exc).__name__})"


def load_policy_file(path: str | Path) -> Policy:
    """Load and validate one file; errors name the file and the field."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        zh, en = unreadable(p, exc)
        raise PolicyError(str(p), "policy_unreadable", f"无法读取策略文件：{zh}", f"cannot read the policy file: {en}") from None
    return load_policy_bytes(raw, p.name)


def load_policy_bytes(raw: bytes, name: str) -> Policy:
    """Load and validate a policy file's content (an upload: the what-if page); ``name`` is how errors call it."""
    try:
        data = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        if isinstance(exc, yaml.reader.ReaderError):
            raise PolicyError(where, "policy_yaml", "文件不是 UTF-8 文本", "the file is not UTF-8 text") from None
        raise PolicyError(where, "policy_yaml", f"YAML 格式错误：{problem}", f"invalid YAML: {problem}") from None
    except RecursionError:
        raise PolicyError(name, "policy_yaml", "YAML 嵌套层级过深", "the YAML is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise PolicyError(name, "policy_yaml", "YAML 中的数字过大", f"a number in the file is too large ({str(exc)[:60]})") from None
    return policy_from_mapping(data, name, raw)


@lru_cache(maxsize=64)
def _builtin(region: str, year: int) -> Policy | None:
    path = BUILTIN_DIR / f"{region}-{year}.yaml"
    if not path.exists():
        return None
    policy = load_policy_file(path)
    if (policy.region, policy.year) != (region, year):  # the name is how it is found; it must not lie
        raise PolicyError(path.name, "policy_misnamed", f"文件内容是 {policy.region}-{policy.year}，与文件名不符",
                          f"the file holds {policy.region}-{policy.year}, not what its name says")
    return policy


def builtin_policy(region: str, year: int) -> Policy | None:
    """The shipped policy for a region and year, or None."""
    return _builtin(region, year)


def builtin_years(region: str) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in BUILTIN_DIR.glob(f"{region}-*.yaml"))


def builtin_policies() -> list[Policy]:
    return [load_policy_file(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
