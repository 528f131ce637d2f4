"""The `yibao` command line: quote bills, check policy files, run the demo."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from yibao.domain.errors import YibaoError

if TYPE_CHECKING:
    from rich.text import Text

    from yibao.domain.settlement import Settlement

# Everything else is imported by the command that needs it: `yibao --help`, a refusal or a quote starts without the
# database layer, the services and the sandboxes (~1 s of imports a process otherwise).

app = typer.Typer(add_completion=False, no_args_is_help=True, help="yibao 医保便捷支付平台 — medical-insurance convenient payment.")
policy_app = typer.Typer(no_args_is_help=True, help="策略文件 Policy files.")
app.add_typer(policy_app, name="policy")
db_app = typer.Typer(no_args_is_help=True, help="数据库 Database schema.")
app.add_typer(db_app, name="db")
audit_app = typer.Typer(no_args_is_help=True, help="审计日志 The audit log.")
app.add_typer(audit_app, name="audit")
payments_app = typer.Typer(no_args_is_help=True, help="支付 Payments.")
app.add_typer(payments_app, name="payments")

contributions_app = typer.Typer(no_args_is_help=True, help="缴费归集 Contributions collected: what personal-account credits draw from.")
app.add_typer(contributions_app, name="contributions")

fsi_app = typer.Typer(no_args_is_help=True, help="国家接口 The national interface (FSI): the reference HIS client, gateway credentials.")
app.add_typer(fsi_app, name="fsi")
catalogue_app = typer.Typer(no_args_is_help=True, help="医保目录 The medical-insurance catalogue: import, check and compare versions.")
app.add_typer(catalogue_app, name="catalogue")

credit_app = typer.Typer(no_args_is_help=True, help="信用支付 Credit payment: daily jobs.")
app.add_typer(credit_app, name="credit")
clearing_app = typer.Typer(no_args_is_help=True, help="清算 Monthly clearing: accept, pay and clear the institutions' applications.")
app.add_typer(clearing_app, name="clearing")
benefits_app = typer.Typer(no_args_is_help=True, help="待遇到卡 Other agencies' subsidies paid to holders' card accounts.")
app.add_typer(benefits_app, name="benefits")
DatabaseOption = typer.Option(None, "--database", help="database URL (default: $YIBAO_DATABASE_URL, else the embedded SQLite file .yibao/yibao.db)")

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def _say_error(text: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]错误 error[/] {text}", highlight=False, markup=True)


def _fail(exc: YibaoError) -> "typer.Exit":
    _say_error(exc.describe())
    return typer.Exit(code=2)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark is harmless
    except OSError as exc:
        from yibao.policies.loader import unreadable

        zh, en = unreadable(path, exc)
        _say_error(f"{path}: {zh} / {en}")
    except UnicodeDecodeError:
        _say_error(f"{path}: 文件不是 UTF-8 编码 / the file is not UTF-8 text")
    raise typer.Exit(code=2)


_AMOUNT_HEADS = (("金额", "total"), ("全自费", "own"), ("超限价", "over"), ("先行自付", "pre"), ("范围内", "in scope"))


def _fee_lines(s: Settlement, console: Console) -> None:
    """The fee lines in the widest of three layouts that fits the console, so no column is ever squeezed to nothing:
    one column each for code, name and class (wide, when every cell fits unwrapped); the item (name · class over its
    code) beside the five amounts, each head on two lines (compact: 80 columns); or each line a small block of its
    amounts (stacked, narrower still). Amounts are never cut or wrapped; a long name or code folds."""
    from rich import box
    from rich.cells import cell_len
    from rich.text import Text

    from yibao.domain.money import format_yuan as y

    def natural(head: str, cells) -> int:  # noqa: ANN001 — the width a column needs to show every line of it whole
        return max(cell_len(part) for text in (head, *cells) for part in text.split("\n"))

    title = "费用明细 Fee lines"
    amounts = [(y(ln.total), y(ln.own_expense), y(ln.over_limit), y(ln.pre_self_pay), y(ln.in_scope)) for ln in s.lines]
    columns = list(zip(*amounts))
    heads = [f"{zh} {en}" for zh, en in _AMOUNT_HEADS]
    # A heavy-boxed table: 3 cells a column (its padding and border) and the left edge; the compact one: 3 a column less
    # one (a space between columns, none outside the first and last).
    wide_needs = (natural("code", [ln.code for ln in s.lines]) + natural("名称 name", [ln.name for ln in s.lines])
                  + natural("类 class", [ln.line_class for ln in s.lines]) + sum(map(natural, heads, columns)) + 3 * 8 + 1)
    if wide_needs <= console.width:
        wide = Table(title=title, title_justify="left")
        wide.add_column("code", no_wrap=True)
        wide.add_column("名称 name", no_wrap=True)
        wide.add_column("类 class", no_wrap=True)
        for head in heads:
            wide.add_column(head, justify="right", no_wrap=True)
        for ln, row in zip(s.lines, amounts):
            wide.add_row(ln.code, ln.name, ln.line_class, *row)
        console.print(wide)
        return

    heads = [f"{zh}\n{en}" for zh, en in _AMOUNT_HEADS]
    if sum(map(natural, heads, columns)) + 12 + 3 * 6 - 1 <= console.width:  # the item column at least 12 wide
        compact = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        compact.add_column("项目 · 类\nitem · class", overflow="fold")
        for head in heads:
            compact.add_column(head, justify="right", no_wrap=True)
        for ln, row in zip(s.lines, amounts):
            compact.add_row(Text.assemble(f"{ln.name} · {ln.line_class}\n", (ln.code, "dim")), *row)
        console.print(compact)
        return

    stacked = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    stacked.add_column(overflow="fold")
    stacked.add_column(justify="right", no_wrap=True)
    for ln, row in zip(s.lines, amounts):
        stacked.add_row(Text.assemble((f"{ln.name} · {ln.line_class}", "bold"), " ", (ln.code, "dim")), "")
        for (zh, en), amount in zip(_AMOUNT_HEADS, row):
            stacked.add_row(f"  {zh} {en}", amount)
        stacked.add_section()
    console.print(stacked)


def render(s: Settlement, console: Console) -> None:
    from rich.text import Text

    from yibao.domain.money import format_yuan

    y = format_yuan
    _fee_lines(s, console)

    catalogue = "" if s.catalogue_version == s.policy_version else f" · 目录 catalogue {s.catalogue_version} ({s.catalogue_digest})"
    split = Table(title=f"结算 Settlement · 策略 policy {s.policy_version} ({s.policy_digest}){catalogue}", title_justify="left")
    split.add_column("项目 item", overflow="fold")
    split.add_column("字段 field", overflow="fold")
    split.add_column("金额 yuan", justify="right", no_wrap=True)
    rows = [
        ("医疗费总额 total", "medfee_sumamt", s.total),
        ("全自费 own expense", "fulamt_ownpay_amt", s.own_expense),
        ("超限价自费 over limit", "overlmt_selfpay", s.over_limit),
        ("先行自付 pre-self-pay", "preselfpay_amt", s.pre_self_pay),
        ("符合范围 in scope", "inscp_scp_amt", s.in_scope),
        ("起付线 deductible", "act_pay_dedc", s.deductible),
        ("统筹基金 pooled fund", "hifp_pay", s.pool_fund),
        ("大病保险 serious illness", "hifmi_pay", s.serious_illness),
        ("职工大额 large amount", "hifob_pay", s.large_amount),
        ("其他基金 other funds", "oth_pay", s.other),
        ("医疗救助 assistance", "maf_pay", s.assistance),
        ("基金合计 funds total", "fund_pay_sumamt", s.fund_total),
        ("个人负担 patient share", "psn_part_amt", s.person_total),
        ("个人账户 account", "acct_pay", s.account_pay),
        ("现金 cash", "psn_cash_pay", s.cash_pay),
        ("账户余额 balance after", "balc", s.balance_after),
    ]
    for label, field, amount in rows:
        split.add_row(label, field, y(amount))
    console.print(split)

    console.print("[bold]说明 Explanation[/]")
    step = 0
    for e in s.explanation:
        if e.step != step:
            step = e.step
            console.print(f"[bold]步骤{step} Step {step}[/]", highlight=False)
        _indented(console, Text(e.zh), chinese=True)
        _indented(console, Text.assemble(e.en, "  ", (f"({e.clause})", "dim")))


# A Chinese sentence breaks after any Chinese character, never inside a number or a word in Latin letters (¥126600.00
# stays whole), nor before closing punctuation or after opening (，：） stay with what precedes them).
_CJK_PIECE = re.compile(r"[（《“‘(\[]*(?:[!-~¥×−]+|\s+|.)[，。、；：！？）》”’)\]]*", re.S)


def _indented(console: Console, text: Text, chinese: bool = False) -> None:
    """``text`` wrapped to the console's width less an indent of two, each line indented. Lines are measured in cells
    (rich.cells: a Chinese character is two wide): Rich wraps English at its spaces; Chinese, which has none, is
    wrapped here between its pieces (_CJK_PIECE); a piece longer than a line is folded by Rich."""
    from rich.cells import cell_len
    from rich.text import Text

    width = max(console.width - 2, 20)
    if chinese:
        lines, line = [], ""
        for piece in _CJK_PIECE.findall(text.plain):
            if line and cell_len(line + piece.rstrip()) > width:
                lines.append(line.rstrip())
                line = piece.lstrip()
            else:
                line += piece
        lines.append(line.rstrip())
        text = Text("\n".join(lines), style=text.style)
    for line in text.wrap(console, width, overflow="fold"):
        line.rstrip()
        console.print("  ", line, sep="", soft_wrap=True, highlight=False)


@app.command("quote", short_help="预结算 Price a bill: fund, account and cash, explained.")
def quote_cmd(
    bill: Path = typer.Argument(..., help="bill JSON file (docs/quote.md)", show_default=False),
    policy: Optional[Path] = typer.Option(None, "--policy", help="policy YAML for the insured region (default: the built-in one)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object with the national field names"),
) -> None:
    """预结算 Price a bill: split fund, personal account and cash, with the explanation."""
    from yibao.formats.bill_json import bill_from_mapping, loads_bill_text
    from yibao.formats.national import settlement_document
    from yibao.services.care.quote import quote

    try:
        settlement = quote(bill_from_mapping(loads_bill_text(_read(bill))), policy)
    except YibaoError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(settlement_document(settlement), ensure_ascii=False, indent=2) + "\n")
    else:
        render(settlement, Console())


@policy_app.command("check", short_help="校验策略文件 Validate policy files (errors name file and field).")
def policy_check(files: list[Path] = typer.Argument(..., help="policy YAML files")) -> None:
    """校验策略文件 Validate policy files; errors name the file and the field."""
    from yibao.policies.loader import load_policy_file

    console = Console(soft_wrap=True)
    failed = 0
    for f in files:  # check every file, then report
        try:
            p = load_policy_file(f)
        except YibaoError as exc:
            _say_error(exc.describe())
            failed += 1
            continue
        console.print(f"[green]OK[/] {f}: {p.version} {p.region_name} (sha256 {p.digest}), schemes: {', '.join(p.schemes)}", highlight=False)
    if failed:
        raise typer.Exit(code=2)


@app.command("demo", short_help="演示 Quote every example bill in examples/.")
def demo(examples: Path = typer.Option(EXAMPLES_DIR, help="folder of example bills")) -> None:
    """演示 Quote every example bill shipped in examples/."""
    from yibao.formats.bill_json import bill_from_mapping, loads_bill_text
    from yibao.services.care.quote import quote

    console = Console()
    files = sorted(examples.glob("*.json"))
    if not files:
        console.print(f"no example bills in {examples}")
        raise typer.Exit(code=2)
    failed = 0
    for f in files:
        console.rule(f"[bold]{f.name}")
        try:
            render(quote(bill_from_mapping(loads_bill_text(_read(f)))), console)
        except YibaoError as exc:
            _say_error(f"{f.name}: {exc.describe()}")
            failed += 1
    if failed:
        raise typer.Exit(code=2)


@db_app.command("upgrade", short_help="建表/迁移 Create or migrate the schema to the newest revision.")
def db_upgrade(database: Optional[str] = DatabaseOption) -> None:
    """建表/迁移 Create or migrate the schema to the newest revision (Alembic)."""
    from yibao.store import migrate
    from yibao.store.db import Database

    db = Database(database)
    migrate.upgrade(db)
    Console().print(f"[green]OK[/] {db.dialect} schema at revision {migrate.current(db)}", highlight=False)


@audit_app.command("verify", short_help="校验审计链 Verify the audit chains and anchor them; exit 1 if altered.")
def audit_verify(database: Optional[str] = DatabaseOption,
                 anchor: Optional[Path] = typer.Option(None, "--anchor", help="the anchor file (default: $YIBAO_AUDIT_ANCHOR, else "
                                                                              ".yibao/audit-anchors.log)")) -> None:
    """校验审计链 Recompute every region's keyed chain, check it against the anchor file and the ledger against the
    trail, then anchor the heads that verified; exit 1 if anything was altered, removed or inserted."""
    import asyncio

    from yibao.crypto.pii import load_keyring
    from yibao.services import Context
    from yibao.services.books import audit
    from yibao.store.anchors import AnchorLog
    from yibao.store.db import Database

    try:  # the chain is keyed with the master key: never invent one here
        keyring = load_keyring(create=False)
    except YibaoError as exc:
        raise _fail(exc) from None
    db = Database(database)
    anchors = AnchorLog(anchor) if anchor is not None else AnchorLog.from_env()
    try:
        reports = asyncio.run(audit.verify_and_anchor(Context.for_database(db, keyring).run, anchors))
    finally:
        db.dispose()
    console = Console(soft_wrap=True)
    for r in reports:
        mark = "[green]OK[/]" if r.ok else "[bold red]BROKEN[/]"
        console.print(f"{mark} region {r.region}: {r.entries} entries" + ("" if r.ok else f" — {r.problem}"), highlight=False)
    if not reports:
        console.print("no audit entries yet")
    console.print(f"anchors: {anchors.path}", highlight=False)
    if not all(r.ok for r in reports):
        raise typer.Exit(code=1)


@contributions_app.command("import", short_help="导入缴费归集 Record the contributions listed in a CSV file.")
def contributions_import(file: Path = typer.Argument(..., help="CSV with a header: region,amount,reference (amount in yuan, e.g. 1200.00)"),
                         database: Optional[str] = DatabaseOption) -> None:
    """导入缴费归集 Record the contributions collected listed in a CSV file (all rows or none); a reference already
    recorded with the same amount is recorded once."""
    import csv

    from yibao.crypto.pii import load_keyring
    from yibao.domain.money import parse_yuan
    from yibao.services import Context
    from yibao.services.books import contributions
    from yibao.store.db import Database

    try:
        keyring = load_keyring(create=False)
    except YibaoError as exc:
        raise _fail(exc) from None
    rows = list(csv.DictReader(_read(file).splitlines()))
    if not rows or set(rows[0]) != {"region", "amount", "reference"}:
        _say_error(f"{file.name}: 表头应为 region,amount,reference / the header must be region,amount,reference")
        raise typer.Exit(code=2)
    db = Database(database)
    Context.for_database(db, keyring)  # keys the audit chain
    now = db.clock()

    def work(conn):  # noqa: ANN001, ANN202
        regions = {}
        for n, row in enumerate(rows, 2):
            try:
                region = row["region"] or ""
                regions[region] = contributions.record_collection(conn, now, region=region, amount=parse_yuan(row["amount"] or "", "amount"),
                                                                  reference=row["reference"] or "", actor=f"import:{file.name}"[:80])
            except YibaoError as exc:
                raise YibaoError(exc.field, exc.code, f"第 {n} 行：{exc.message_zh}", f"line {n}: {exc.message_en}") from None
        return regions
    try:
        done = db.run(work)
    except YibaoError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    sys.stdout.write(json.dumps({"rows": len(rows), "regions": {r: c.view() for r, c in sorted(done.items())}}, ensure_ascii=False) + "\n")


def _catalogue_file(path: Path):  # noqa: ANN202
    """A catalogue file parsed, or every error listed (file, row, field) and exit 1."""
    from yibao.domain.catalogue import CatalogueFileError
    from yibao.formats import catalogue_csv

    try:
        return catalogue_csv.parse(path.name, _read(path))
    except CatalogueFileError as exc:
        console = Console(stderr=True, soft_wrap=True)
        for e in exc.errors:
            console.print(f"[bold red]错误 error[/] {e.describe()}", highlight=False, markup=True)
        console.print(f"{len(exc.errors)} 处错误 / error(s)", highlight=False)
        raise typer.Exit(code=1) from None


@catalogue_app.command("check", short_help="校验目录文件 Validate a catalogue file without loading it.")
def catalogue_check(file: Path = typer.Argument(..., help="a catalogue file (docs/catalogue.md)")) -> None:
    """校验目录文件 Validate a catalogue file without loading it: exit 1 listing every error (file, row, field)."""
    f = _catalogue_file(file)
    sys.stdout.write(json.dumps({"file": f.name, "insu_admdvs": f.region, "ver": f.ver, "begndate": f.begndate.isoformat(),
                                 "entries": len(f.entries), "digest": f.digest, "ok": True}, ensure_ascii=False) + "\n")


@catalogue_app.command("import", short_help="导入目录 Import a catalogue file as its region's version.")
def catalogue_import(file: Path = typer.Argument(..., help="a catalogue file (docs/catalogue.md)"),
                     region: Optional[str] = typer.Option(None, "--region", help="the region it is for (must match the file's insu_admdvs)"),
                     database: Optional[str] = DatabaseOption) -> None:
    """导入目录 Import a catalogue file as its region's version (all entries or none); the same version again changes nothing."""
    from rich.progress import Progress

    from yibao.services.catalogue import versions
    from yibao.store.db import Database

    f = _catalogue_file(file)
    db = Database(database)
    now = db.clock()
    try:
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"{f.name} → {region or f.region}", total=len(f.entries))
            done = db.run(lambda c: versions.import_file(c, now, file=f, region=region, actor=f"import:{file.name}"[:80],
                                                         progress=lambda n: bar.advance(task, n)))
    except YibaoError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    sys.stdout.write(json.dumps(done.view(), ensure_ascii=False) + "\n")


@catalogue_app.command("diff", short_help="比较目录版本 What a newer catalogue file adds, removes, changes.")
def catalogue_diff(old: Path = typer.Argument(..., help="the older catalogue file"), new: Path = typer.Argument(..., help="the newer one"),
                   as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """比较目录版本 What a new catalogue file adds, removes and changes against an older one."""
    from yibao.domain.catalogue import diff
    from yibao.services.catalogue.views import entry_view

    a, b = _catalogue_file(old), _catalogue_file(new)
    d = diff(list(a.entries), list(b.entries))
    if as_json:
        sys.stdout.write(json.dumps({"old": a.ver, "new": b.ver, "added": [entry_view(e) for e in d.added],
                                     "removed": [entry_view(e) for e in d.removed],
                                     "changed": [{"hilist_code": o.hilist_code, "fields": {k: [entry_view(o).get(k), entry_view(n).get(k)]
                                                                                             for k in names}} for o, n, names in d.changed]},
                                    ensure_ascii=False) + "\n")
        return
    console = Console(soft_wrap=True)
    console.print(f"{a.ver} → {b.ver}: 新增 added {len(d.added)}, 删除 removed {len(d.removed)}, 变更 changed {len(d.changed)}", highlight=False)
    for e in d.added:
        console.print(f"+ {e.hilist_code} {e.hilist_name} ({e.chrgitm_lv})", highlight=False, markup=False)
    for e in d.removed:
        console.print(f"- {e.hilist_code} {e.hilist_name}", highlight=False, markup=False)
    for o, n, names in d.changed:
        va, vb = entry_view(o), entry_view(n)
        what = "; ".join(f"{k}: {va.get(k)} → {vb.get(k)}" for k in names)
        console.print(f"~ {o.hilist_code} {n.hilist_name}: {what}", highlight=False, markup=False)


def _bank_overrides(bank: list[str], keys: Path) -> dict:
    """`--bank ID=URL` (a bank run by `yibao sandbox bank --keys …`) as connector overrides; a malformed one exits 2."""
    overrides = {}
    for item in bank:
        pi_id, _, url = item.partition("=")
        if not pi_id or not url.startswith(("http://", "https://")):
            _say_error(f"--bank 应为 ID=URL / --bank must be ID=URL, got {item!r}")
            raise typer.Exit(code=2)
        from yibao.sandbox.channels import pair

        overrides[pi_id] = pair("bank", key_dir=keys).connector(url)
    return overrides


def _migrated_database(database: Optional[str]):  # noqa: ANN202
    """The database a job works on, refused (exit 2) unless it exists with the platform's schema at its head revision: a
    job never creates a database file, its folder or a key where it was pointed at the wrong place."""
    from sqlalchemy import inspect

    from yibao.domain.errors import Conflict
    from yibao.store import migrate
    from yibao.store.db import Database, database_url

    url = database or database_url()
    path = url.split("///", 1)[1] if url.startswith("sqlite") and "///" in url else ""
    missing = Conflict("database", "no_schema", f"数据库 {url} 中没有平台的数据表（或版本不是最新）：请先运行 yibao db upgrade，或用 --database 指向平台的数据库",
                       f"the database {url} holds no platform schema (or not the latest): run `yibao db upgrade`, or point --database at the platform's")
    if path and path != ":memory:" and not os.path.exists(path):
        raise _fail(missing)
    db = Database(url)
    try:
        # The platform's tables, at the latest revision when Alembic made them (a test's create_all stamps none).
        ok = inspect(db.engine).has_table("settlements")
        at = migrate.current(db) if ok else None
    except Exception:  # noqa: BLE001 — a server that cannot be reached is refused as a missing schema is
        ok, at = False, None
    if not ok or (at is not None and at != migrate.head()):
        db.dispose()
        raise _fail(missing)
    return db


def _job(title: str, database: Optional[str], work, *, bank: list[str] = (), keys: Path = Path("."), sms: bool = False,  # noqa: ANN001
         as_json: bool = False, render=None) -> dict:  # noqa: ANN001
    """The skeleton of a CLI job (clearing, benefits, reconciliation, credit): the banks parsed, the database and the keyring
    opened, ``work(ctx, progress)`` run to its report under a transient progress bar on stderr (``progress(done, total,
    description=None)``), a refusal said on stderr with exit 2, the database disposed; then the report as one JSON line
    (``--json``) or ``render(report, console)``."""
    import asyncio

    from rich.progress import Progress

    from yibao.services import Context
    from yibao.services.agency.connectors import Connectors

    overrides = _bank_overrides(bank, keys)
    db = _migrated_database(database)
    try:
        keyring = _keyring()
        extra = {}
        if sms:
            from yibao.sms import gateway_from_env

            extra["sms"] = gateway_from_env()
        ctx = Context.for_database(db, keyring, Connectors(keyring, overrides=overrides), **extra)
        stderr = Console(stderr=True)
        with Progress(console=stderr, transient=True, disable=not stderr.is_terminal) as bar:  # a bar only on a terminal
            task = bar.add_task(title, total=None)

            def progress(done: int, total: Optional[int], description: Optional[str] = None) -> None:
                bar.update(task, completed=done, total=total, **({"description": description} if description else {}))
            report = asyncio.run(work(ctx, progress))
    except YibaoError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    elif render is not None:
        render(report, Console(soft_wrap=True))
    return report


def _reminder_kind(kind: str) -> str:
    if kind.startswith("d-"):
        return f"到期前{kind[2:]}天 due in {kind[2:]} day(s)"
    return {"d0": "到期日 due today", "overdue": "已逾期 overdue"}.get(kind, kind)


def _render_reminders(report: dict, console: Console) -> None:
    console.print(f"还款提醒 credit reminders {report['day']}: 未还账单 unpaid bills {report['bills']}, 新提醒 reminders recorded "
                  f"{report['sent']} (待还 outstanding ¥{_yuan_sum(report['amounts'].values())}), 短信已发 texts sent {report['texted']}",
                  highlight=False)
    table = Table(title="本次提醒 Reminders recorded", title_justify="left")
    table.add_column("类型 kind", overflow="fold")
    table.add_column("笔数 bills", justify="right", no_wrap=True)
    table.add_column("待还 outstanding ¥", justify="right", no_wrap=True)
    for kind, n in report["by_kind"].items():
        table.add_row(_reminder_kind(kind), str(n), report["amounts"].get(kind, "0.00"))
    if table.row_count:
        console.print(table)
    else:
        console.print("今天没有需要新记录的提醒 no new reminder is due today", highlight=False)
    if report.get("unsent"):
        console.print(f"[bold yellow]短信未发 texts waiting {report['unsent']}[/] ({report['sms_problem']}): 下次运行时再发 "
                      "the next run sends them", highlight=False)


_LINE_STATUS = {"checked": "检查 lines checked", "suspended": "暂停 suspended", "active": "正常 active",
                "bank_unreachable": "银行未应答 bank unreachable"}


def _render_overdue(report: dict, console: Console) -> None:
    counts = [f"{_LINE_STATUS.get(k, k)} {v}" for k, v in report.items() if k not in ("day", "past_due")]
    console.print(f"逾期处理 credit overdue {report['day']}: " + ", ".join(counts), highlight=False)
    console.print(f"逾期未还 past due on these lines ¥{report['past_due']}", highlight=False)
    if report.get("bank_unreachable"):
        console.print("[bold yellow]有银行未应答[/]：按平台账单处理，下次运行再同步 / a bank did not answer: the platform's own bills "
                      "decided; the next run applies the bank's view", highlight=False)


def _yuan_sum(amounts) -> str:  # noqa: ANN001
    from yibao.domain.money import format_yuan, parse_yuan

    return format_yuan(sum(parse_yuan(a) for a in amounts))


def _credit_job(job_name: str, database: Optional[str], banks: list[str], keys: Path, as_json: bool) -> dict:
    """Run one credit job with a progress bar; banks are `ID=URL` (a bank run by `yibao sandbox bank --keys …`)."""
    from yibao.services.credit import jobs as credit_jobs

    job = credit_jobs.run_reminders if job_name == "reminders" else credit_jobs.run_overdue
    title = "还款提醒 reminders" if job_name == "reminders" else "逾期处理 overdue"
    return _job(title, database, lambda ctx, progress: job(ctx, progress=progress), bank=banks, keys=keys, sms=True,
                as_json=as_json, render=_render_reminders if job_name == "reminders" else _render_overdue)


BankOption = typer.Option([], "--bank", help="a credit bank as PAYMENT_INSTITUTION_ID=URL (repeatable)")
KeysOption = typer.Option(Path(".yibao/sandbox-keys"), "--keys", help="folder of the bank's shared secret (as `yibao sandbox bank --keys`)")
JsonOption = typer.Option(False, "--json", help="the report as one JSON line (for scripts)")


@credit_app.command("reminders", short_help="还款提醒 Record and text today's reminders for unpaid bills.")
def credit_reminders(database: Optional[str] = DatabaseOption, as_json: bool = JsonOption) -> None:
    """还款提醒 Record today's reminders for unpaid bills (once per bill and kind) and text them (YIBAO_SMS_URL/KEY; unsent
    ones wait for the next run). Prints what was recorded and texted, with the bills' outstanding yuan; --json for scripts."""
    _credit_job("reminders", database, [], Path("."), as_json)


@credit_app.command("overdue", short_help="逾期处理 Suspend lines past due + grace, restore repaid ones.")
def credit_overdue(database: Optional[str] = DatabaseOption, bank: list[str] = BankOption, keys: Path = KeysOption,
                   as_json: bool = JsonOption) -> None:
    """逾期处理 Ask each bank for lines with a bill past due; suspend past due + grace, restore repaid ones. Prints the
    lines checked, suspended and active, and what they owe past due; --json for scripts."""
    _credit_job("overdue", database, bank, keys, as_json)


@clearing_app.command("run", short_help="月度清算 Accept, pay and clear the month's applications.")
def clearing_run(month: str = typer.Option(..., "--month", help="the month cleared, YYYY-MM (ended)"),
                 region: Optional[str] = typer.Option(None, "--region", help="one pooling region only"),
                 database: Optional[str] = DatabaseOption, bank: list[str] = BankOption, keys: Path = KeysOption,
                 as_json: bool = typer.Option(False, "--json", help="the report as JSON (for machines)")) -> None:
    """月度清算 Accept the month's applications that agree with the platform's figures, pay every accepted one through the agency's
    bank (`--bank ID=URL` for a sandbox bank run by `yibao sandbox bank`), clear those the bank confirmed. Re-running changes
    nothing already done; applications that differ wait for an operator's review."""
    from yibao.domain.clearing import parse_month
    from yibao.services.clearing import jobs as clearing_jobs

    try:
        m = parse_month(month, "--month")
    except YibaoError as exc:
        raise _fail(exc) from None
    bank_id = bank[-1].partition("=")[0] if bank else None  # the last --bank pays (each one checked by _job)

    def render(report: dict, console: Console) -> None:
        console.print(f"清算 clearing {report['month']}{' · ' + region if region else ''}: 申请 applications {report['applications']}, "
                      f"本次清算 cleared now {report['cleared']}, 此前已清算 already cleared {report['already_cleared']}", highlight=False)
        console.print(f"拨付 paid ¥{report['paid']} · 质量保证金 deposits held ¥{report['deposits']}", highlight=False)
        table = Table(title="待处理 Waiting", title_justify="left")
        for col in ("clr_appy_evt_id", "状态 state", "说明 detail"):
            table.add_column(col, overflow="fold")
        for x in report["awaiting_review"]:
            diff = f"基金差额 fund diff {x['fund_appy_sum']['difference']}, 个账差额 account diff {x['acct_pay']['difference']}"
            table.add_row(x["clr_appy_evt_id"], "待审核 awaiting review", x["problem"] or diff)
        for x in report["awaiting_confirmation"]:
            table.add_row(x["clr_appy_evt_id"], "待银行确认 awaiting the bank", f"{x['instruction_no']} {x['state']} {x['error'] or ''}".strip())
        for x in report["failed"]:
            table.add_row(x["clr_appy_evt_id"], "失败 failed", str(x.get("error")))
        if table.row_count:
            console.print(table)

    _job(f"清算 clearing {m}", database, lambda ctx, progress: clearing_jobs.run_month(ctx, m, region=region, bank_id=bank_id, progress=progress),
         bank=bank, keys=keys, as_json=as_json, render=render)


@app.command("whatif", short_help="政策测算 Policy what-if: re-price a period under a new policy.")
def whatif_cmd(policy: Path = typer.Option(..., "--policy", help="the new policy YAML (its region and year choose what is re-priced)"),
               start: str = typer.Option(..., "--from", help="the first Beijing day of the period, YYYY-MM-DD"),
               end: str = typer.Option(..., "--to", help="the last Beijing day of the period, YYYY-MM-DD"),
               region: Optional[str] = typer.Option(None, "--region", help="the insured region (must be the policy's; default: it)"),
               top: int = typer.Option(10, "--top", help="how many of the most affected persons to list"),
               workers: int = typer.Option(1, "--workers", help="worker processes pricing persons in parallel (a long history: the cores)"),
               as_json: bool = typer.Option(False, "--json", help="the report as one JSON object"),
               as_csv: bool = typer.Option(False, "--csv", help="the report as CSV (section,key,zh,en,settlements,old,new,change)"),
               database: Optional[str] = DatabaseOption) -> None:
    """政策测算 Policy what-if: re-price the period's stored settlements under a new policy (the year replayed person by person)
    and report the change in fund spend per layer, insurance type and institution level, and the persons most affected.
    Reads only (docs/whatif.md)."""
    from datetime import date as date_

    from yibao.domain.errors import InputError
    from yibao.policies.loader import load_policy_file
    from yibao.services.care import whatif

    if as_json and as_csv:
        _say_error("--json 与 --csv 只能选一个 / choose one of --json and --csv")
        raise typer.Exit(code=2)
    days = {}
    for name, value in (("--from", start), ("--to", end)):
        try:
            days[name] = date_.fromisoformat(value)
        except ValueError:
            _say_error(f"{name} 应为 YYYY-MM-DD / {name} must be a date as YYYY-MM-DD, got {value!r}")
            raise typer.Exit(code=2) from None
    try:
        new = load_policy_file(policy)
        whatif.check_period(new, days["--from"], days["--to"], region)
        if not 1 <= top <= whatif.MAX_TOP:
            raise InputError("top", "out_of_range", f"人数应在1–{whatif.MAX_TOP}之间", f"must be between 1 and {whatif.MAX_TOP}")
        if not 1 <= workers <= whatif.MAX_WORKERS:
            raise InputError("workers", "out_of_range", f"进程数应在1–{whatif.MAX_WORKERS}之间", f"must be between 1 and {whatif.MAX_WORKERS}")
    except YibaoError as exc:
        if isinstance(exc, InputError):  # the service names its arguments; here they are options
            exc = InputError(f"--{exc.field}", exc.code, exc.message_zh, exc.message_en)
        raise _fail(exc) from None

    async def work(ctx, progress):  # noqa: ANN001, ANN202
        return await ctx.run(lambda c: whatif.replay(c, new, start=days["--from"], end=days["--to"], region=region, top=top,
                                                     progress=progress, workers=workers), write=False)

    report = _job(f"政策测算 what-if {new.version}", database, work)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
    elif as_csv:
        _whatif_csv(report, sys.stdout)
    else:
        _whatif_table(report, Console(soft_wrap=True))


def _whatif_csv(report, out) -> None:  # noqa: ANN001
    import csv

    from yibao.domain.money import format_yuan as y
    from yibao.services.care.whatif import INSURANCE_TYPE_LABELS, NOT_REPRICED

    w = csv.writer(out, lineterminator="\n")
    w.writerow(("section", "key", "zh", "en", "settlements", "old", "new", "change"))
    for row in report.layer_rows():
        w.writerow(("layer", row["layer"], row["zh"], row["en"], report.repriced, y(row["old"]), y(row["new"]), y(row["change"])))
    t = report.total
    w.writerow(("fund_total", "fund_pay_sumamt", "基金支付合计", "all fund layers", t.settlements, y(t.fund_old), y(t.fund_new), y(t.change)))
    for section, groups in (("insurance_type", report.insurance_types()), ("level", report.levels())):
        for g in groups:
            w.writerow((section, g.key, g.zh, g.en, g.settlements, y(g.fund_old), y(g.fund_new), y(g.change)))
    for p in report.persons:  # the zh and en columns name the person's scheme, as the insurance-type rows do
        zh, en = INSURANCE_TYPE_LABELS.get(p.insurance_type, (p.insurance_type, p.insurance_type))
        w.writerow(("person", p.psn_no, zh, en, p.settlements, y(p.old), y(p.new), y(p.change)))
    for f in report.failures:
        w.writerow(("failure", f.setl_id, f.zh, f.en, 1, y(f.fund_old), "", ""))
    for reason, n in report.not_repriced.items():
        w.writerow(("not_repriced", reason, *NOT_REPRICED[reason], n, "", "", ""))


def _whatif_table(report, console: Console) -> None:  # noqa: ANN001
    from yibao.domain.money import format_yuan as y
    from yibao.services.care.whatif import NOT_REPRICED

    p = report.policy
    console.print(f"政策测算 policy what-if: {p.version} (sha256 {p.digest[:12]}…) · 参保地 insured region {report.region} · "
                  f"{report.start} – {report.end}", highlight=False)
    console.print(f"重算结算 settlements re-priced {report.repriced} · 参保人 persons {report.persons_replayed} · "
                  f"期前重放 replayed before the period {report.replayed_before_period} · 无法重算 could not be priced {report.failed}",
                  highlight=False)

    def signed(fen: int) -> str:
        return ("+" if fen > 0 else "") + y(fen)

    def table(title: str, first: str, rows) -> None:  # noqa: ANN001
        tab = Table(title=title, title_justify="left")
        for col in (first, "笔数 settlements", "现行 stored", "新政策 new", "变化 change"):
            tab.add_column(col, justify="left" if col == first else "right", overflow="fold")
        for label, n, old, new in rows:
            tab.add_row(label, str(n), y(old), y(new), signed(new - old))
        console.print(tab)

    t = report.total
    table("按基金 By fund layer", "基金 layer", [*((f"{r['zh']} {r['en']} ({r['field']})", report.repriced, r["old"], r["new"])
                                                  for r in report.layer_rows()), ("合计 total", t.settlements, t.fund_old, t.fund_new)])
    table("按险种 By insurance type", "险种 type", [(f"{g.zh} {g.en}", g.settlements, g.fund_old, g.fund_new) for g in report.insurance_types()])
    table("按机构级别 By institution level", "级别 level", [(f"{g.zh} {g.en}", g.settlements, g.fund_old, g.fund_new) for g in report.levels()])
    table("影响最大的参保人 Persons most affected", "psn_no", [(f"{x.psn_no} {x.insurance_type}", x.settlements, x.old, x.new) for x in report.persons])
    if not report.repriced and not report.failed:
        console.print("期间内没有属于该策略统筹区和年度的有效结算：请核对策略文件的统筹区、年度和日期范围 / no standing settlement of the "
                      "period belongs to the policy's region and year: check the file's region and year and the dates", highlight=False)
    if report.failed or report.failed_before_period:
        console.print(f"无法按新政策重算 could not be priced under the new policy: {report.failed} "
                      f"({', '.join(f'{k} {v}' for k, v in report.failure_codes.items())}); 期前 before the period {report.failed_before_period}",
                      highlight=False)
        for f in report.failures:
            console.print(f"  {f.setl_id} {f.psn_no} 现行基金 stored fund {y(f.fund_old)}: {f.field}: {f.zh} / {f.en}", highlight=False, markup=False)
    left = [f"{NOT_REPRICED[k][0]} {NOT_REPRICED[k][1]}: {n}" for k, n in report.not_repriced.items() if n]
    if left:
        console.print("未重算 not re-priced — " + "; ".join(left), highlight=False)


@app.command("serve", short_help="启动平台 Migrate and serve the API and pages (--demo: the demo).")
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port"),
    database: Optional[str] = DatabaseOption,
    demo: bool = typer.Option(False, "--demo/--no-demo", help="the demo: its world loaded into an empty database (or the one it "
                              "loaded before), its public credentials, the sandboxes; without it, production"),
    workers: int = typer.Option(1, min=1, max=16, help="worker processes"),
    log_format: Optional[str] = typer.Option(None, "--log-format", help="json (one object per line, with the request id) or text; "
                                             "default $YIBAO_LOG_FORMAT, else json in production and text for the demo"),
) -> None:
    """启动平台 Migrate the database and serve the API and pages (OpenAPI at /docs): production unless --demo."""
    if log_format is not None:
        if log_format not in ("json", "text"):
            raise typer.BadParameter("json or text", param_hint="--log-format")
        os.environ["YIBAO_LOG_FORMAT"] = log_format  # read by each worker's app (app.app_from_env)
    from yibao.runtime import production
    from yibao.store import migrate
    from yibao.store.db import Database

    if not demo:  # before anything is created: what production needs from its operator
        _refuse_to_start(production.problems())
    db = Database(database)
    if not demo:
        _refuse_to_start(production.file_problems(db.sqlite_path), db)
    os.environ["YIBAO_DATABASE_URL"] = db.url
    os.environ["YIBAO_DEMO"] = "1" if demo else "0"
    if demo:  # the demo's face checks and text messages go to its own sandboxes, over HTTP
        from yibao.sandbox.face import DEMO_FACE_KEY
        from yibao.sandbox.sms import DEMO_SMS_KEY

        local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        os.environ.setdefault("YIBAO_FACE_KEY", DEMO_FACE_KEY)
        os.environ.setdefault("YIBAO_FACE_URL", f"http://{local}:{port}/sandbox/face")
        os.environ.setdefault("YIBAO_SMS_KEY", DEMO_SMS_KEY)
        os.environ.setdefault("YIBAO_SMS_URL", f"http://{local}:{port}/sandbox/sms")
        os.environ.setdefault("YIBAO_BASE_URL", f"http://{local}:{port}")  # where the mounted sandbox institutions are reached
    migrate.upgrade(db)
    console = Console(soft_wrap=True)
    if demo:
        from yibao.sandbox import demo as demo_data

        try:  # refused on a database the demo did not create
            guide = demo_data.ensure(db, _keyring())
        except YibaoError as exc:
            db.dispose()
            raise _fail(exc) from None
        demo_data.print_guide(guide, f"http://{host}:{port}", console)
        console.print("[bold yellow]演示模式：演示凭证、沙箱短信网关、沙箱支付机构和沙箱人脸核验已启用，切勿用于生产。[/]\n"
                      "[bold yellow]Demo mode: demo credentials, the sandbox SMS gateway, sandbox payment institutions and the sandbox "
                      "face verifier are on — never in production (`yibao serve` without --demo; see README).[/]", highlight=False)
    else:
        _refuse_to_start(production.database_problems(db), db)
        if not (os.environ.get("YIBAO_SMS_URL") and os.environ.get("YIBAO_SMS_KEY")):
            console.print("[bold yellow]未配置短信网关（YIBAO_SMS_URL、YIBAO_SMS_KEY）：短信验证码登录将答复服务不可用。 / "
                          "No SMS gateway (YIBAO_SMS_URL, YIBAO_SMS_KEY): SMS log-in answers 503.[/]", highlight=False)
    _recover_at_start(db, console, allow_private_callbacks=demo)
    db.dispose()
    from yibao.runtime.server import serve as run_server

    run_server(host, port, workers, "yibao.app:app_from_env")  # the composition root builds each worker's app


def _refuse_to_start(problems: list[YibaoError], db=None) -> None:  # noqa: ANN001
    """Production lacks something: one line per missing thing, what it needs, and exit status 2."""
    if not problems:
        return
    for problem in problems:
        _say_error(problem.describe())
    _say_error("生产模式未启动；演示请用 yibao serve --demo / production did not start; for the demo run yibao serve --demo")
    if db is not None:
        db.dispose()
    raise typer.Exit(code=2)


def _keyring():  # noqa: ANN202
    """The PII keyring (the demo's key file made on first use); a refusal (a key file others can read …) exits 2."""
    from yibao.crypto.pii import load_keyring

    try:
        return load_keyring()
    except YibaoError as exc:
        raise _fail(exc) from None


@app.command("sandbox", short_help="运行沙箱支付机构 Run one SANDBOX payment institution (not real).")
def sandbox(
    name: str = typer.Argument(..., help="wxpay | alipay | unionpay | bank"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8711, help="port"),
    callback: Optional[str] = typer.Option(None, "--callback", help="where notifications go (the platform's notify URL for this institution)"),
    keys: Path = typer.Option(Path(".yibao/sandbox-keys"), "--keys", help="folder of the sandbox's and the platform's keys (made on first use)"),
    seed: Optional[int] = typer.Option(None, help="seed of the sandbox's randomness (reproducible failures)"),
) -> None:
    """运行一个沙箱支付机构（非真实机构） Run one SANDBOX payment institution alone — not a real institution."""
    from yibao.sandbox.channels import NAMES, pair

    if name not in NAMES:
        _say_error(f"没有名为 {name} 的沙箱支付机构 / no sandbox institution named {name!r}; choose one of {', '.join(NAMES)}")
        raise typer.Exit(code=2)
    import uvicorn

    p = pair(name, callback_url=callback, seed=seed, key_dir=keys)
    p.runtime.notifier.keep_connections = True  # a long-lived process: one HTTP client, its connections kept
    Console(soft_wrap=True).print(
        f"[bold yellow]沙箱 SANDBOX[/] {p.app.title}\n  http://{host}:{port}  (admin: /sandbox/knobs, /sandbox/notifications/flush, /docs)\n"
        f"  keys: {keys}/{name}-*  ·  notifications → {callback or '(none: set --callback)'}", highlight=False)
    uvicorn.run(p.app, host=host, port=port, log_level="info")


def _recover(db, now=None, *, allow_private_callbacks: bool = False):  # noqa: ANN001, ANN202
    import asyncio

    from yibao.services import Context
    from yibao.services.payments import recovery

    return asyncio.run(recovery.recover(Context.for_database(db, _keyring(), allow_private_callbacks=allow_private_callbacks), now))


def _recover_at_start(db, console: Console, *, allow_private_callbacks: bool) -> None:  # noqa: ANN001
    """Payments a previous process left midway are finished or undone before serving (an institution not
    reachable yet leaves its orders for the serving process's periodic recovery). Hospitals' callbacks go
    where the serving process would send them (loopback only in the demo)."""
    report = _recover(db, allow_private_callbacks=allow_private_callbacks)
    if report.orders or report.holds_expired:
        console.print(f"支付恢复 Payment recovery at start-up: {report.as_dict()}", highlight=False)


@payments_app.command("recover", short_help="恢复中断的支付 Finish or undo payments stopped midway.")
def payments_recover(database: Optional[str] = DatabaseOption, as_json: bool = JsonOption) -> None:
    """恢复中断的支付 Finish or undo payments stopped midway: ask the institutions, void abandoned holds, release expired ones.
    Prints what was completed and voided (with the orders' yuan) and what is still unknown; --json for scripts."""
    from yibao.domain.money import format_yuan
    from yibao.services.payments import recovery

    async def work(ctx, progress) -> dict:  # noqa: ANN001
        report = await recovery.recover(ctx, progress=progress)
        return {**report.as_dict(), "orders": report.orders, "amounts": {k: format_yuan(v) for k, v in report.totals.items()},
                "refunds": report.refunds, "error_details": report.errors}

    _job("支付恢复 recovery", database, work, as_json=as_json, render=_render_recovery)


_ORDER_STATUS = {"completed": "完成 completed", "voided": "撤销 voided"}


def _render_recovery(report: dict, console: Console) -> None:
    console.print(f"支付恢复 payment recovery: 完成 completed {report['completed']} (¥{report['completed_amount']}), 撤销 voided "
                  f"{report['voided']} (¥{report['voided_amount']}), 仍不明 still unknown {report['still_unknown']}, 到期冻结释放 "
                  f"holds released {report['holds_expired']}, 退款 refunds driven {len(report['refunds'])}, 协议解约 agreements "
                  f"terminated {report['agreements_terminated']} (待解约 terminating {report['agreements_terminating']}), "
                  f"出错 errors {report['errors']}", highlight=False)
    table = Table(title="订单 Orders", title_justify="left")
    table.add_column("order_id", overflow="fold")
    table.add_column("状态 status", overflow="fold")
    table.add_column("金额 total ¥", justify="right", no_wrap=True)
    for order_id, status in report["orders"].items():
        table.add_row(order_id, _ORDER_STATUS.get(status, f"未定 {status}"), report["amounts"].get(order_id, ""))
    for refund_id, status in report["refunds"].items():
        table.add_row(refund_id, f"退款 refund {status}", "")
    if table.row_count:
        console.print(table)
    else:
        console.print("没有中断的支付 nothing was left midway", highlight=False)
    for subject, error in report["error_details"].items():
        _say_error(f"{subject}: {error}")


@app.command("reconcile", short_help="日对账 Reconcile a day's statements with the platform's cash legs.")
def reconcile(day: str = typer.Option(..., "--date", help="the Beijing day of the statements, YYYY-MM-DD"),
              institution: Optional[str] = typer.Option(None, "--institution", help="one payment institution (default: every one configured)"),
              as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
              database: Optional[str] = DatabaseOption) -> None:
    """日对账 Reconcile the payment institutions' statements of a day with the platform's cash legs (a re-run is idempotent).
    Exit 0 when every run is balanced, 1 when differences are open, 2 when a statement could not be had."""
    from datetime import date as date_

    from yibao.services.reconciliation import runs as recon

    try:
        the_day = date_.fromisoformat(day)
    except ValueError:
        _say_error(f"--date 应为 YYYY-MM-DD / --date must be YYYY-MM-DD, got {day!r}")
        raise typer.Exit(code=2) from None

    async def work(ctx, progress) -> dict:  # noqa: ANN001
        ids = [institution] if institution else await ctx.run(recon.institutions_to_reconcile, write=False)
        done: list[dict] = []
        failed: list[dict] = []
        for n, pi_id in enumerate(ids):
            progress(n, len(ids), f"对账 {the_day} {pi_id}")
            try:
                result = await recon.reconcile(ctx, day=the_day, pi_id=pi_id, actor="cli:reconcile")
                done.append({**result.run, "found": result.differences})
            except YibaoError as exc:
                failed.append({"payment_institution_id": pi_id, "error": exc.describe()})
        progress(len(ids), len(ids))
        return {"day": the_day.isoformat(), "runs": done, "failed": failed}

    def render(report: dict, console: Console) -> None:
        table = Table(title=f"日对账 Reconciliation {the_day}", title_justify="left")
        for col in ("支付机构 institution", "状态 status", "对账单 statement", "平台 platform", "匹配 matched", "待次日 pooled",
                    "差异 differences", "未处理 open"):
            table.add_column(col, no_wrap=True)
        for r in report["runs"]:
            st = r["statement"]
            table.add_row(r["payment_institution_id"], r["status"], f"{st['trades']} / {st['trade_total']} − {st['refunds']} / {st['refund_total']}",
                          f"{r['platform']['legs']} / {r['platform']['net']}", str(r["matched"]), str(r["pooled"]), str(r["differences"]),
                          str(r["open_differences"]))
        console.print(table)
        for r in report["runs"]:
            for x in r["found"]:
                if x["status"] == "open":
                    console.print(f"  {r['payment_institution_id']} {x['class_zh']} {x['class']} {x['kind']} {x['key']}: "
                                  f"平台 platform {x['platform']['amount']} ({x['platform']['state']}) · "
                                  f"机构 institution {x['institution']['amount']}", highlight=False, markup=False)
        for f in report["failed"]:
            _say_error(f"{f['payment_institution_id']}: {f['error']}")

    report = _job(f"对账 {the_day}", database, work, as_json=as_json, render=render)
    if report["failed"]:
        raise typer.Exit(code=2)
    if any(r["open_differences"] for r in report["runs"]):
        raise typer.Exit(code=1)


@fsi_app.command("call", short_help="调用国家接口 Send one national-interface transaction; print the answer.")
def fsi_call(
    infno: str = typer.Argument(..., help="the transaction: 9001, 1101, 2201, 2204, 2207 and others (docs/fsi.md)"),
    url: str = typer.Option(..., "--url", help="the platform, e.g. http://127.0.0.1:8000 (the gateway path is added)"),
    institution: str = typer.Option(..., "--institution", help="fixmedins_code, also the x-tif-paasid"),
    secret: str = typer.Option(..., "--secret", help="the institution's gateway token (yibao fsi issue)"),
    input_: str = typer.Option(..., "--input", help="the transaction's input: JSON, or @FILE"),
    sign_no: str = typer.Option("", "--sign-no", help="the sign_no 9001 answered"),
    msgid: Optional[str] = typer.Option(None, "--msgid", help="default: code + yyyyMMddHHmmss + a 4-digit sequence (said on stderr)"),
    region: Optional[str] = typer.Option(None, "--region", help="mdtrtarea_admvs (default: the 6 digits after the code's letter)"),
    opter: str = typer.Option("001", "--opter", help="the operator's number"),
    sm4_key: Optional[str] = typer.Option(None, "--sm4-key", help="hex: the institution's SM4 key (encrypted mode)"),
    sm2_private: Optional[str] = typer.Option(None, "--sm2-private", help="hex: the institution's SM2 private key (encrypted mode)"),
    platform_public: Optional[str] = typer.Option(None, "--platform-public", help="hex: the platform's SM2 public key, to check answers"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds"),
    save: Optional[Path] = typer.Option(None, "--save", help="9102: write the file (output.file_data, base64) to this path"),
) -> None:
    """调用国家接口 Send one transaction in the national envelope; print the answer envelope as JSON.
    Exit 0 when infcode is 0, 1 when -1, 2 on bad usage or no answer."""
    import httpx

    from yibao.formats import fsi as wire

    text = input_
    if input_.startswith("@"):
        try:
            text = Path(input_[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            _say_error(f"无法读取输入文件 / cannot read the input file: {exc}")
            raise typer.Exit(code=2) from None
    try:
        payload = wire.loads(text)
    except ValueError:
        _say_error("--input 不是有效的 JSON / --input is not valid JSON")
        raise typer.Exit(code=2) from None
    if not isinstance(payload, dict):
        _say_error("--input 应为 JSON 对象 / --input must be a JSON object")
        raise typer.Exit(code=2)
    if (sm4_key is None) != (sm2_private is None):
        _say_error("加密模式须同时给出 --sm4-key 与 --sm2-private / the encrypted mode needs both --sm4-key and --sm2-private")
        raise typer.Exit(code=2)
    key = private = public = None
    try:
        if sm4_key is not None:
            from yibao.crypto import gm

            key, private = bytes.fromhex(sm4_key), gm.Sm2PrivateKey.from_hex(sm2_private)
            public = gm.Sm2PublicKey.from_hex(platform_public) if platform_public else None
    except (ValueError, ImportError) as exc:
        _say_error(f"密钥无效 / a key is invalid: {exc}")
        raise typer.Exit(code=2) from None
    area = region or (institution[1:7] if institution[1:7].isdigit() else "")
    from datetime import datetime, timezone

    sender = wire.Sender(institution, secret, mdtrtarea_admvs=area, opter=opter, opter_name=opter, sm4_key=key, sm2_private=private)
    at = datetime.now(timezone.utc)
    msgid = msgid or wire.new_msgid(institution, at)
    sys.stderr.write(f"msgid {msgid}\n")  # stdout is the answer; a reversal (2601) or a retry needs the id that was sent
    headers, body = wire.request(sender, infno, payload, at, sign_no=sign_no, msgid=msgid)
    try:
        r = httpx.post(url.rstrip("/") + "/fsi/api/rsfComIfsService/callService", content=body, headers=headers, timeout=timeout)
        answer = wire.loads(r.content)
        answer = wire.open_output(sender, answer, public)
    except (httpx.HTTPError, ValueError) as exc:
        _say_error(f"没有得到应答 / no answer: {exc}")
        raise typer.Exit(code=2) from None
    output = answer.get("output")
    if save is not None and answer.get("infcode") == 0 and isinstance(output, dict) and isinstance(output.get("file_data"), str):
        import base64

        save.write_bytes(base64.b64decode(output["file_data"]))
        output["file_data"] = f"<{output.get('file_size')} bytes written to {save}>"  # the file, not its base64, on the screen
    sys.stdout.write(wire.dumps(answer) + "\n")
    raise typer.Exit(code=0 if answer.get("infcode") == 0 else 1)


@fsi_app.command("issue", short_help="签发网关令牌 Issue (or replace) an institution's gateway token.")
def fsi_issue(
    code: str = typer.Argument(..., help="the institution's fixmedins_code"),
    database: Optional[str] = DatabaseOption,
    sm4_key: Optional[str] = typer.Option(None, "--sm4-key", help="hex, 16 bytes: turn the encrypted mode on (with --sm2-public)"),
    sm2_public: Optional[str] = typer.Option(None, "--sm2-public", help="hex: the institution's SM2 public key"),
) -> None:
    """签发国家接口网关令牌 Issue (or replace) an institution's gateway token; printed once."""
    from yibao.services import Context
    from yibao.services.agency import gateway_credentials
    from yibao.store.db import Database

    db = Database(database)
    keyring = _keyring()
    Context.for_database(db, keyring)  # keys the audit chain
    try:
        key = bytes.fromhex(sm4_key) if sm4_key else None
    except ValueError:
        _say_error("--sm4-key 应为十六进制 / --sm4-key must be hex")
        raise typer.Exit(code=2) from None
    try:
        cred = db.run(lambda c: gateway_credentials.issue(c, keyring, db.clock(), institution_id=code, actor="cli", sm4_key=key,
                                                          sm2_public=sm2_public))
    except YibaoError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    out = {"institution": cred.institution_id, "token": cred.token, "encrypted": cred.encrypted}
    if cred.encrypted:
        from yibao.fsi.keys import platform_key

        out["platform_sm2_public"] = platform_key(keyring).public_key().to_hex()
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


@fsi_app.command("revoke", short_help="吊销网关令牌 Revoke an institution's gateway token.")
def fsi_revoke(
    code: str = typer.Argument(..., help="the institution's fixmedins_code"),
    database: Optional[str] = DatabaseOption,
) -> None:
    """吊销国家接口网关令牌 Revoke an institution's gateway token (a serving process notices within 30 s); `fsi issue` gives a new one."""
    from yibao.services import Context
    from yibao.services.agency import gateway_credentials
    from yibao.store.db import Database

    db = Database(database)
    keyring = _keyring()
    Context.for_database(db, keyring)  # keys the audit chain
    try:
        db.run(lambda c: gateway_credentials.revoke(c, db.clock(), institution_id=code, actor="cli"))
    except YibaoError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    sys.stdout.write(json.dumps({"institution": code, "status": "revoked"}, ensure_ascii=False) + "\n")


def main() -> None:
    # Whatever this process creates — the SQLite database and its -wal/-shm, key files, sandbox keys — only
    # its user may read; the code asks for 0600/0700 where it creates them, and this covers anything else.
    os.umask(0o077)
    app()



@benefits_app.command("run", short_help="驱动待遇发放 Pay submitted benefit batches' open credits to cards.")
def benefits_run(batch: Optional[str] = typer.Option(None, "--batch", help="one batch only (it must be submitted)"),
                 region: Optional[str] = typer.Option(None, "--region", help="one pooling region's batches only"),
                 database: Optional[str] = DatabaseOption, bank: list[str] = BankOption, keys: Path = KeysOption,
                 as_json: bool = typer.Option(False, "--json", help="the report as JSON (for machines)")) -> None:
    """驱动待遇发放 Drive every submitted batch's open credits: ask the card's bank about each instruction, send it only if the
    bank never had it, record credited or returned (`--bank ID=URL` for a sandbox bank run by `yibao sandbox bank`).
    Re-running asks again about what is unclear and never sends a settled credit twice."""
    from yibao.services.benefits import jobs as benefit_jobs

    def render(report: dict, console: Console) -> None:
        console.print(f"待遇到卡 benefits: 批次 batches {report['batches']}, 处理 credits driven {report['driven']}: 到账 credited "
                      f"{report['credited']}, 退回 returned {report['returned']}, 待银行 awaiting the bank {report['awaiting_bank']}, "
                      f"不明 unclear {len(report['unclear'])}", highlight=False)
        table = Table(title="批次 Batches", title_justify="left")
        for col in ("batch_id", "发放机构 agency", "项目 purpose", "状态 status", "到账 credited", "退回 returned", "未决 open", "合计 total"):
            table.add_column(col, overflow="fold")
        for b in report["summaries"]:
            sm = b["summary"]
            table.add_row(b["batch_id"], b["agency"], b["purpose"], b["status"], f"{sm['credited']['count']} ¥{sm['credited']['amount']}",
                          f"{sm['returned']['count']} ¥{sm['returned']['amount']}", f"{sm['open']['count']} ¥{sm['open']['amount']}",
                          f"¥{sm['total']}")
        if table.row_count:
            console.print(table)
        for u in report["unclear"]:
            console.print(f"不明 unclear {u['credit_id']}: {u['error']}", highlight=False)

    _job("待遇到卡 benefits", database,
         lambda ctx, progress: benefit_jobs.run(ctx, batch_id=batch, region=region, actor="cli:benefits", progress=progress),
         bank=bank, keys=keys, as_json=as_json, render=render)


if __name__ == "__main__":
    main()
