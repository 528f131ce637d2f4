"""Explanation lines, rendered only when read.

The engine records each step as templates plus raw values (fen, ppm); the zh/en text is
formatted on access, so pricing a bill does no string work that no one reads. In a template,
``{x:y}`` prints fen as yuan (¥12.50) and ``{x:p}`` a ppm ratio as a percentage (10%), ``{x:pt}`` as points (10);
``{x:zh}`` / ``{x:en}`` a RatioSchedule described in that language; ``{x:rzh}`` / ``{x:ren}`` a region code with its name
(宁波市（330200）, domain/regions.py).
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Any, Mapping, NamedTuple

from yibao.domain.money import format_ratio, format_yuan
from yibao.domain.policy import RatioSchedule
from yibao.domain.regions import label as region_label


def describe_schedule(s: RatioSchedule, lang: str) -> str:
    """"90%" or "¥0.00–¥10000.00 80%、¥10000.00以上 90%" (bands)."""
    if s.is_flat:
        return format_ratio(s.bands[0].ratio)
    parts, lo = [], 0
    for b in s.bands:
        r = format_ratio(b.ratio)
        if b.upto is None:
            parts.append(f"¥{format_yuan(lo)}以上{r}" if lang == "zh" else f"{r} above ¥{format_yuan(lo)}")
        else:
            span = f"¥{format_yuan(lo)}–¥{format_yuan(b.upto)}"
            parts.append(f"{span} {r}" if lang == "zh" else f"{r} for {span}")
            lo = b.upto
    return ("、" if lang == "zh" else ", ").join(parts)


def _field(value: Any, format_spec: str) -> str:
    if format_spec == "y":
        return f"¥{format_yuan(value)}"
    if format_spec == "p":
        return format_ratio(value)
    if format_spec == "pt":
        return format_ratio(value)[:-1]  # percentage points: "10"
    if format_spec in ("zh", "en"):
        return describe_schedule(value, format_spec)
    if format_spec in ("rzh", "ren"):
        return region_label(value, format_spec[1:])
    return format(value, format_spec)


@lru_cache(maxsize=1024)
def _parsed(template: str) -> tuple[tuple[str, str | None, str], ...]:
    # Templates are few and fixed; parse each once (string.Formatter re-parses on every call: ~20 µs a line).
    return tuple((literal, name, spec or "") for literal, name, spec, _conv in string.Formatter().parse(template))


def render(template: str, params: Mapping[str, Any]) -> str:
    out = []
    for literal, name, spec in _parsed(template):
        out.append(literal)
        if name is not None:
            out.append(_field(params[name], spec))
    return "".join(out)


class Explanation(NamedTuple):
    step: int
    code: str
    amount: int | None
    clause: str  # where in the policy the rule stands
    zh_template: str
    en_template: str
    params: Mapping[str, Any]

    @property
    def zh(self) -> str:
        return render(self.zh_template, self.params)

    @property
    def en(self) -> str:
        return render(self.en_template, self.params)
