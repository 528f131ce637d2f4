"""The pages' catalogue: every text a template asks for exists in Chinese and English, with the
same placeholders; no template writes a visible Chinese or English sentence around the catalogue."""

from __future__ import annotations

import importlib.util
import re
import shutil
import string
from pathlib import Path

import pytest

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


# ---- the catalogues themselves (gettext .po, read with Babel) and scripts/i18n_po.py

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "i18n_po.py"


def _script():
    spec = importlib.util.spec_from_file_location("i18n_po", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_text_is_left_written_in_python():
    assert i18n.PENDING == (), "run: python scripts/i18n_po.py --from-python src/yibao/web/i18n.py"


def test_the_pages_refuse_catalogues_that_disagree_or_lack_a_text(tmp_path):
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE, locale)
    assert i18n.load(locale) == i18n.MESSAGES
    en = locale / "en" / "LC_MESSAGES" / "yibao.po"
    original = en.read_text(encoding="utf-8")
    en.write_text(original.replace('msgid "brand"\n', 'msgid "brand_typo"\n'), encoding="utf-8")
    with pytest.raises(i18n.CatalogueError, match=r"only in zh \['brand'\], only in en \['brand_typo'\]"):
        i18n.load(locale)
    en.write_text(original.replace('msgid "logout"\nmsgstr "Log out"', 'msgid "logout"\nmsgstr ""'), encoding="utf-8")
    with pytest.raises(i18n.CatalogueError, match="logout has no text"):
        i18n.load(locale)


def test_the_script_moves_python_entries_into_both_catalogues_once(tmp_path):
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE, locale)
    zh_po = locale / "zh" / "LC_MESSAGES" / "yibao.po"
    zh_po.write_text(zh_po.read_text(encoding="utf-8").replace('msgid "logout"', '# translator: keep it short\nmsgid "logout"'),
                     encoding="utf-8")
    source = tmp_path / "more.py"
    source.write_text('X = 1\n\nMESSAGES: dict[str, tuple[str, str]] = {\n'
                      '    # ---- h99: a new page\n'
                      '    "h99_title": ("新页面{n}", "New page {n}"),\n'
                      '    "logout": ("退出", "Sign out"),  # changed wording\n'
                      '}\n\n\ndef f():\n    return X\n', encoding="utf-8")
    script = _script()
    assert script.main(["--from-python", str(source), "--locale-dir", str(locale)]) == 0
    texts = i18n.load(locale)
    assert texts["h99_title"] == ("新页面{n}", "New page {n}") and texts["logout"] == ("退出", "Sign out")
    assert len(texts) == len(i18n.MESSAGES) + 1
    assert source.read_text(encoding="utf-8") == 'X = 1\n\nMESSAGES: dict[str, tuple[str, str]] = {\n}\n\n\ndef f():\n    return X\n'
    zh_text = zh_po.read_text(encoding="utf-8")
    assert "# translator: keep it short\n" in zh_text and '#. ---- h99: a new page\nmsgid "h99_title"\nmsgstr "新页面{n}"' in zh_text
    assert zh_text.index('"h99_title"') > zh_text.index('"pay_by_credit"')  # appended: existing order kept
    before = {p: p.read_bytes() for p in locale.rglob("*.po")}
    assert script.main(["--from-python", str(source), "--locale-dir", str(locale)]) == 0
    assert {p: p.read_bytes() for p in locale.rglob("*.po")} == before  # idempotent
    # An older branch's whole file: with --new-only its stale text of a known key is not applied, its new key is.
    old = tmp_path / "old.py"
    old.write_text('MESSAGES = {\n    "logout": ("退出登录", "Log out"),\n    "h98_x": ("新", "New"),\n}\n', encoding="utf-8")
    assert script.main(["--new-only", "--keep", "--from-python", str(old), "--locale-dir", str(locale)]) == 0
    texts = i18n.load(locale)
    assert texts["logout"] == ("退出", "Sign out") and texts["h98_x"] == ("新", "New")
    assert "h98_x" in old.read_text(encoding="utf-8")  # --keep
    # Three-way, as at a merge: only what the branch did since its base — a key added, a text changed, a key removed.
    base = tmp_path / "base.py"
    base.write_text('MESSAGES = {\n    "logout": ("退出登录", "Log out"),\n    "brand": ("医保便捷支付", "yibao medical-insurance payment"),\n'
                    '    "h98_x": ("新", "New"),\n}\n', encoding="utf-8")
    branch = tmp_path / "branch.py"
    branch.write_text('MESSAGES = {\n    "logout": ("退出登录", "Log out"),\n    "brand": ("医保支付", "yibao payment"),\n'
                      '    "h97_y": ("另", "Other"),\n}\n', encoding="utf-8")
    assert script.main(["--from-python", str(branch), "--base", str(base), "--locale-dir", str(locale)]) == 0
    texts = i18n.load(locale)
    assert texts["logout"] == ("退出", "Sign out")  # changed since the base elsewhere, not by the branch: kept
    assert texts["brand"] == ("医保支付", "yibao payment") and texts["h97_y"] == ("另", "Other") and "h98_x" not in texts


SERVICES = Path(i18n.__file__).parents[1] / "services"
# Where a visit's status is written: set_status(conn, id, <expr>, now) anywhere in services; in care/visits.py an
# update of the visits table and the status a visit opens with (`status, admitted_at = "open", None`).
SET_STATUS = re.compile(r"""\bvisits\.set_status\(conn, [^,]+, (.+?), now\)""")
UPDATE_VISIT = re.compile(r"""update\(V\)[^\n]*?\.values\(status="(\w+)\"""")
OPENED_AS = re.compile(r"""^\s*status(?:, \w+)* = "(\w+)\"""", re.M)
LITERAL = re.compile(r"""(?<!== )"(\w+)\"""")


def test_every_status_a_visit_can_have_has_a_label_in_both_languages():
    """The visit page's badge is label('visit_status_', status): a status without an entry showed its raw code
    (a payment waiting for the holder's PIN leaves the visit "settling")."""
    written: set[str] = set()
    for path in SERVICES.rglob("*.py"):
        for expr in SET_STATUS.findall(path.read_text(encoding="utf-8")):
            written |= set(LITERAL.findall(expr)) - {"inpatient"}  # `... if visit.kind == "inpatient" else ...`
    visits = (SERVICES / "care" / "visits.py").read_text(encoding="utf-8")
    written |= set(UPDATE_VISIT.findall(visits)) | set(OPENED_AS.findall(visits))
    assert {"open", "admitted", "discharged", "settled", "cancelled", "settling"} <= written, written  # the scan works
    missing = sorted(s for s in written if f"visit_status_{s}" not in i18n.MESSAGES)
    assert missing == []
    assert all(re.search(r"[\u4e00-\u9fff]", i18n.MESSAGES[f"visit_status_{s}"][0]) for s in written)  # a label, not the code
