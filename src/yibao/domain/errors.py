"""Errors raised by the domain. Each names the field and the rule, in Chinese and English."""

from __future__ import annotations


def one_of(values) -> tuple[str, str]:  # noqa: ANN001 — any iterable of choices
    """An allowed list as each language says it: ("A、B、C 或 unlisted 之一", "one of A, B, C or unlisted") — the Chinese
    text with Chinese punctuation, no English words or Python quotes in it; a single choice is just itself."""
    items = [str(v) for v in values]
    if len(items) == 1:
        return items[0], items[0]
    return f"{'、'.join(items[:-1])} 或 {items[-1]} 之一", f"one of {', '.join(items[:-1])} or {items[-1]}"


class YibaoError(Exception):
    """Base of every error yibao reports to a user (never shown as a traceback)."""

    def __init__(self, field: str, code: str, message_zh: str, message_en: str) -> None:
        self.field = field
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.message_zh} / {self.message_en}"


class InputError(YibaoError):
    """Bad input from a caller: a bill, a request, a command-line argument."""


class PolicyError(YibaoError):
    """A policy file that does not validate; ``field`` includes the file name."""


class NotFound(YibaoError):
    """The thing does not exist, or the caller may not see it (never say which)."""


class Conflict(YibaoError):
    """The request clashes with the current state (already settled, key reused …)."""


class Unauthorized(YibaoError):
    """No valid credential for this audience."""


class Forbidden(YibaoError):
    """A valid credential that may not do this."""


class TooManyAttempts(YibaoError):
    """Refused without looking: too many failed attempts recently; try again after ``retry_after`` seconds."""

    def __init__(self, field: str, code: str, message_zh: str, message_en: str, retry_after: int) -> None:
        super().__init__(field, code, message_zh, message_en)
        self.retry_after = retry_after


class Unavailable(YibaoError):
    """An outside party the answer depends on (a verifier, an institution) gave no trustworthy answer now;
    nothing changed, try again after ``retry_after`` seconds."""

    retry_after = 5


def not_found(field: str, what_zh: str, what_en: str) -> NotFound:
    return NotFound(field, "not_found", f"{what_zh}不存在", f"{what_en} not found")
