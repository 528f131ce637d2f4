"""The pages' texts: gettext catalogues, one per language, read with Babel; Simplified Chinese first, English second.

The texts live in locale/zh/LC_MESSAGES/yibao.po and locale/en/LC_MESSAGES/yibao.po beside this file: msgid is
the key, msgstr the text (docs/pages.md, "Texts and translations", says how a translator edits them). Templates
say `t('key')`; the reader's language comes from the `yibao_lang` cookie (zh unless it says en). `MESSAGES` maps
each key to (zh, en), as it always did. Messages of errors are not here: every `YibaoError` carries its own zh
and en text. A key missing from the catalogues is an error (tests/web/test_i18n.py reads every template), and so
is a key one catalogue has and the other lacks, or an empty text: the pages refuse to start with such catalogues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LANGS = ("zh", "en")
LOCALE = Path(__file__).parent / "locale"
DOMAIN = "yibao"


class CatalogueError(RuntimeError):
    """The catalogues cannot be used as they are: the message says which key and which catalogue."""


def read_catalogue(lang: str, locale_dir: Path = LOCALE) -> dict[str, str]:
    """key -> text of one language's catalogue (its header aside)."""
    path = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN, abort_invalid=True)
    texts: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        if not isinstance(message.id, str) or not isinstance(message.string, str):
            raise CatalogueError(f"{path}: {message.id!r} has plural forms; the pages use none")
        if not message.string.strip():
            raise CatalogueError(f"{path}: {message.id} has no text")
        if message.fuzzy:
            raise CatalogueError(f"{path}: {message.id} is marked fuzzy: check the text and remove the flag")
        texts[message.id] = message.string
    return texts


def load(locale_dir: Path = LOCALE, pending: dict[str, tuple[str, str]] | None = None) -> dict[str, tuple[str, str]]:
    """key -> (zh, en) from both catalogues, which must hold the same keys; entries still written in Python
    (`pending`) come last and win, until scripts/i18n_po.py moves them into the catalogues."""
    zh, en = (read_catalogue(lang, locale_dir) for lang in LANGS)
    if zh.keys() != en.keys():
        only_zh, only_en = sorted(zh.keys() - en.keys()), sorted(en.keys() - zh.keys())
        raise CatalogueError(f"the zh and en catalogues disagree on keys: only in zh {only_zh}, only in en {only_en}")
    messages = {key: (text, en[key]) for key, text in zh.items()}
    messages.update(pending or {})
    return messages


# Texts not yet in the catalogues. A developer may write new entries here, "key": ("中文", "English"), then run
# `python scripts/i18n_po.py --from-python src/yibao/web/i18n.py`, which moves them into both catalogues
# (tests/web/test_i18n.py fails while any is left here).
MESSAGES: dict[str, tuple[str, str]] = {
}
PENDING = tuple(MESSAGES)
MESSAGES = load(pending=MESSAGES)


def text(lang: str, key: str, **kw: Any) -> str:
    zh, en = MESSAGES[key]
    template = en if lang == "en" else zh
    return template.format(**kw) if kw else template
