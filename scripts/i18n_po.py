#!/usr/bin/env python3
"""Moves page texts still written in Python into the gettext catalogues the pages read.

The pages' texts live in src/yibao/web/locale/<lang>/LC_MESSAGES/yibao.po, one catalogue per language
(zh, en): msgid is the key a template asks for (`t('key')`), msgstr the text (docs/pages.md). A
developer who prefers may still write new entries as Python, `"key": ("中文", "English"),`, in the
`MESSAGES` dict literal of src/yibao/web/i18n.py (or any file with such a dict literal); this script
moves them into both catalogues:

    python scripts/i18n_po.py --from-python src/yibao/web/i18n.py
    python scripts/i18n_po.py --from-python <(git show BRANCH:src/yibao/web/i18n.py) \
                              --base <(git show $(git merge-base BRANCH HEAD):src/yibao/web/i18n.py)

For each entry of every top-level dict literal of key -> (zh, en): a new key is appended to both
catalogues (with the Python comments above it as extracted comments, `#.`); a key already there with
other text gets the new text (printed, so a reviewer sees it; with --new-only it keeps its text and the difference
is only printed); an equal one is left alone. With --base (the file where a branch began) only the branch's own
edits are applied — keys it added or whose text it changed, and keys it removed are removed — so a branch that
began before other texts changed cannot undo them. Existing
entries keep their order and their translator comments (`# `) and flags. The entries are then removed from
the Python file when it is a regular file (not a pipe; `--keep` leaves them). Running it twice changes
nothing the second time. Without --from-python it only rewrites the catalogues in their canonical form and
checks that zh and en have the same keys (exit 1 when not).
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from datetime import datetime, timezone
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "src" / "yibao" / "web" / "locale"
DOMAIN = "yibao"
LANGS = ("zh", "en")
HEADER = """# yibao: the pages' texts, language {lang}. msgid is the key a template asks for (t('key')); edit msgstr.
# Keep {{placeholders}} as they are; lines starting "#." say where a text shows; add your own notes as "# ".
# docs/pages.md ("Texts and translations") says how."""


def catalogue_path(lang: str, locale_dir: Path = LOCALE) -> Path:
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(lang: str, locale_dir: Path = LOCALE) -> Catalog:
    path = catalogue_path(lang, locale_dir)
    if not path.exists():
        first = datetime(2026, 12, 7, tzinfo=timezone.utc)
        return Catalog(locale=lang, domain=DOMAIN, project="yibao", version="1", charset="utf-8", fuzzy=False,
                       header_comment=HEADER.format(lang=lang), creation_date=first, revision_date=first)
    with path.open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def render(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=0, no_location=True)
    return out.getvalue()


def python_entries(source: str) -> tuple[list[tuple[str, str, str, list[str]]], list[tuple[int, int]]]:
    """Every (key, zh, en, comments) of the top-level dict literals of key -> (zh, en), and the line spans
    (first line of the body, last line) of those literals."""
    tree = ast.parse(source)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    entries: list[tuple[str, str, str, list[str]]] = []
    spans: list[tuple[int, int]] = []
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if not isinstance(value, ast.Dict):
            continue
        found = []
        previous_end = value.lineno
        for key_node, val_node in zip(value.keys, value.values, strict=True):
            try:
                key, texts = ast.literal_eval(key_node), ast.literal_eval(val_node)
            except ValueError:
                break
            if not (isinstance(key, str) and isinstance(texts, tuple) and len(texts) == 2 and all(isinstance(x, str) for x in texts)):
                break
            above = [comments[n] for n in range(previous_end + 1, key_node.lineno) if n in comments]
            beside = [comments[n] for n in range(key_node.lineno, val_node.end_lineno + 1) if n in comments]
            found.append((key, texts[0], texts[1], above + beside))
            previous_end = val_node.end_lineno
        else:
            if found:  # a dict literal of texts, every entry of it
                entries += found
                spans.append((value.lineno, value.end_lineno))
    return entries, spans


def merge(entries: list[tuple[str, str, str, list[str]]], catalogs: dict[str, Catalog], *, new_only: bool = False) -> list[str]:
    """Puts the entries into the catalogues; returns what changed, one line each. ``new_only``: a key the catalogues
    have keeps its text there (the difference is printed, not applied)."""
    said = []
    for key, zh, en, notes in entries:
        for lang, text in (("zh", zh), ("en", en)):
            catalog = catalogs[lang]
            message = catalog.get(key)
            if message is None:
                catalog.add(key, text, auto_comments=[n for n in notes if n])
                said.append(f"added   {lang} {key}: {text}")
            elif message.string != text and new_only:
                said.append(f"kept    {lang} {key}: {message.string!r} (the Python says {text!r})")
            elif message.string != text:
                said.append(f"changed {lang} {key}: {message.string!r} -> {text!r}")
                message.string = text
    return said


def empty_literals(source: str, spans: list[tuple[int, int]]) -> str:
    """The file with each dict literal's body removed (the `{` and `}` lines and everything else kept)."""
    lines = source.splitlines(keepends=True)
    for first, last in sorted(spans, reverse=True):
        opening, closing = lines[first - 1], lines[last - 1]
        head = opening[:opening.index("{") + 1]
        tail = closing[closing.rindex("}"):]
        if first == last:
            lines[first - 1] = head + tail
        else:
            lines[first - 1:last] = [head + "\n", " " * (len(head) - len(head.lstrip())) + tail]
    return "".join(lines)


def key_difference(catalogs: dict[str, Catalog]) -> list[str]:
    zh, en = ({m.id for m in catalogs[lang] if m.id} for lang in LANGS)
    return [f"only in zh: {k}" for k in sorted(zh - en)] + [f"only in en: {k}" for k in sorted(en - zh)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-python", nargs="*", default=[], metavar="FILE", help="files with dict literals of key -> (zh, en)")
    parser.add_argument("--keep", action="store_true", help="leave the entries in the Python files")
    parser.add_argument("--new-only", action="store_true", help="add only keys the catalogues lack; print, not apply, other differences "
                        "(for a whole file from an older branch, whose texts of existing keys may be stale)")
    parser.add_argument("--base", type=Path, metavar="FILE", help="the same Python file where the branch began "
                        "(git show $(git merge-base BRANCH HEAD):src/yibao/web/i18n.py): only what the branch added, changed or removed is applied")
    parser.add_argument("--locale-dir", type=Path, default=LOCALE)
    args = parser.parse_args(argv)
    base = None
    if args.base is not None:
        base = {key: (zh, en) for key, zh, en, _ in python_entries(args.base.read_text(encoding="utf-8"))[0]}

    catalogs = {lang: load(lang, args.locale_dir) for lang in LANGS}
    before = {lang: render(c) if catalogue_path(lang, args.locale_dir).exists() else b"" for lang, c in catalogs.items()}
    moved: list[tuple[Path, str, list[tuple[int, int]]]] = []
    for name in args.from_python:
        path = Path(name)
        source = path.read_text(encoding="utf-8")
        entries, spans = python_entries(source)
        read = len(entries)
        if base is not None:  # three-way: the branch's own edits only
            keys = {e[0] for e in entries}
            for key in [k for k in base if k not in keys and catalogs["zh"].get(k) is not None]:
                for catalog in catalogs.values():
                    catalog.delete(key)
                print(f"removed {key} (the branch removed it)")
            entries = [e for e in entries if base.get(e[0]) != (e[1], e[2])]
        for line in merge(entries, catalogs, new_only=args.new_only):
            print(line)
        print(f"{name}: {read} entries read" + (f", {len(entries)} added or changed since the base" if base is not None else ""))
        if spans and not args.keep and path.is_file():
            moved.append((path, source, spans))

    problems = key_difference(catalogs)
    if problems:
        print("the catalogues disagree on keys:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    for lang, catalog in catalogs.items():
        text = render(catalog)
        if text != before[lang]:
            catalog.revision_date = datetime.now(timezone.utc).replace(second=0, microsecond=0)
            path = catalogue_path(lang, args.locale_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(render(catalog))
            print(f"wrote {path.relative_to(args.locale_dir.parent) if path.is_relative_to(args.locale_dir.parent) else path}")
    for path, source, spans in moved:  # only once the catalogues hold them
        path.write_text(empty_literals(source, spans), encoding="utf-8")
        print(f"{path}: entries moved out of the Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
