"""The pages' catalogue: every text a template asks for exists in Chinese and English, with the
same placeholders; no template writes a visible Chinese or English sentence around the catalogue."""

from __future__ import annotations

import re
import string
from pathlib import Path

from yibao.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"
KEY = re.compile(r"""\bt\(\s*'([a-z0-9_]+)'\s*[,)]""")
PREFIXED = re.compile(r"""\blabel\(\s*'([a-z0-9_]+)'|\bt\(\s*'([a-z0-9_]+_)'\s*~""")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_used_by_a_template_is_in_the_catalogue():
    used = {key for path in TEMPLATES.rglob("*.html") for key in KEY.findall(path.read_text(encoding="utf-8"))}
    assert used, "no t('…') found: the pattern is wrong"
    assert sorted(used - set(i18n.MESSAGES)) == []


def test_each_label_prefix_has_entries():
    prefixes = {a or b for path in TEMPLATES.rglob("*.html") for a, b in PREFIXED.findall(path.read_text(encoding="utf-8"))}
    assert prefixes and all(any(k.startswith(p) for k in i18n.MESSAGES) for p in prefixes), prefixes


def test_both_languages_are_there_with_the_same_placeholders():
    for key, (zh, en) in i18n.MESSAGES.items():
        assert zh.strip() and en.strip(), key
        assert _fields(zh) == _fields(en), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or key == "lang_switch", f"{key}: the Chinese text has no Chinese"


def test_no_han_text_is_written_into_a_template_outside_the_catalogue():
    for path in TEMPLATES.rglob("*.html"):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", text, flags=re.S)
        text = re.sub(r'placeholder="[^"]*"', "", text)
        assert not re.search(r"[\u4e00-\u9fff]", text), f"{path.name}: Chinese text outside the catalogue"


def test_the_toggle_names_the_other_language():
    assert i18n.text("zh", "lang_switch") == "English" and i18n.text("en", "lang_switch") == "中文"


def test_every_catalogue_entry_is_used_somewhere():
    """A text nobody shows is a text nobody keeps right: each key is asked for by a template or the web code,
    by name or under a prefix the pages complete (label('card_status_', …), 'paid_by_' ~ method, field_…)."""
    web = TEMPLATES.parent
    sources = "".join(p.read_text(encoding="utf-8") for p in [*TEMPLATES.rglob("*.html"), *web.glob("*.py")] if p.name != "i18n.py")
    prefixes = {"field_"} | set(re.findall(r"""label\(\s*'([a-z0-9_]+_)'""", sources)) | set(re.findall(r"""'([a-z0-9_]+_)'\s*~""", sources))
    unused = [k for k in i18n.MESSAGES if not re.search(rf"""['"]{k}['"]""", sources) and not any(k.startswith(p) for p in prefixes)]
    assert unused == []
