"""The policy what-if (docs/whatif.md): what would a new policy have cost over the stored settlement history?

Every standing settlement made in the period is priced again under the new policy, with the same fee lines, the
same person and visit facts, and the year replayed person by person: each person's accumulators start at zero on
1 January of the policy year and take, in the order the settlements were made, the deltas the NEW pricing gives — not
the stored ones, which the old policy produced. Settlements made before the period are replayed too (they move the
accumulators) but are not reported. The report compares what each fund layer paid (the stored settlement) with what
it would have paid, per layer, per insurance type, per institution level, and names the persons most affected.

Which settlements: those whose insured region and policy year are the new policy's (the fund the policy governs);
the period's other settlements are counted as not re-priced, by reason. Cancelled (cancelled, reversed, refunded in
full), voided and pending ones are left out, and so are partly refunded ones whose insurance part was given back
(their fund shares and accumulators were returned); a partial one whose cash only was refunded stands. A settlement
the new policy cannot price (it lacks the person's scheme or tier, …) is counted and listed with the engine's
refusal, and adds nothing to the replayed accumulators.

Read only: one read unit (a consistent view of the history) streaming the rows through a server-side cursor on
PostgreSQL (SQLite reads them as the cursor advances); memory holds one person's year, the running sums and the
top-N heap — never the history. The person's facts (tier, retirement, hardship, date of birth) and the institution's
level are read as they are now: the platform keeps no snapshot of them per settlement.
"""

from __future__ import annotations

import heapq
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import String, and_, case, exists, func, literal, select, type_coerce
from sqlalchemy.engine import Connection

from yibao.domain.bill import Accumulators
from yibao.domain.errors import InputError, YibaoError
from yibao.domain.money import format_yuan, parse_yuan
from yibao.domain.policy import INSURANCE_TYPES, LEVEL_EN, LEVEL_ZH, LEVELS, Policy
from yibao.domain.settlement import settle
from yibao.services.agency.policies import catalogue_for
from yibao.services.books.volumes import day_bounds
from yibao.services.care import bills
from yibao.store.tables import fee_lines as L
from yibao.store.tables import institutions as I
from yibao.store.tables import persons as P
from yibao.store.tables import settlements as S
from yibao.store.tables import transfers as T
from yibao.store.tables import visits as V

# The fund layers compared, in one place: (Settlement attribute, national field name, zh label, en label). The old
# amount is the settlements column of that name when there is one, else the stored document's national field.
LAYERS: tuple[tuple[str, str, str, str], ...] = (
    ("pool_fund", "hifp_pay", "统筹基金", "pooled fund"),
    ("serious_illness", "hifmi_pay", "大病保险", "serious-illness insurance"),
    ("large_amount", "hifob_pay", "职工大额医疗补助", "employee large-amount subsidy"),
    ("other", "oth_pay", "其他基金（大额封顶线以上）", "other funds (above the large-amount cap)"),
    ("assistance", "maf_pay", "医疗救助", "medical assistance"),
)
INSURANCE_TYPE_LABELS = {"employee": ("职工医保", "employee insurance"), "resident": ("居民医保", "resident insurance"),
                         "child": ("少儿医保", "children's insurance")}
STANDING = ("settled", "partial")
NOT_REPRICED = {  # reason: (zh, en) — the period's settlements the what-if leaves out, and why
    "other_region": ("参保地不是该策略的统筹区", "insured in another region than the policy's"),
    "other_year": ("属于其他策略年度", "of another policy year"),
    "cancelled": ("已撤销、冲正或全额退款", "cancelled, reversed or refunded in full"),
    "insurance_refunded": ("医保部分已退款", "their insurance part was refunded"),
    "pending": ("支付中，尚未完成", "held for a payment still in progress"),
    "voided": ("支付未完成，已作废", "voided: their payment did not go through"),
}
MAX_TOP = 1000
MAX_WORKERS = 64
_BATCH = 8000  # rows (fee lines) per batch sent to a worker process
_STORED = tuple(attr for attr, *_ in LAYERS if attr in S.c)
_FROM_DOCUMENT = tuple((i, fld) for i, (attr, fld, *_) in enumerate(LAYERS) if attr not in S.c)
_PAGE = 2000  # rows fetched per round trip from the server-side cursor
_LINE = slice(15, 24)  # the fee line's columns in the stream (see _stream_query)
_OLD = slice(24, 24 + len(_STORED))

Progress = Callable[[int, int | None], None]


@dataclass
class Group:
    """A slice of the period (an insurance type, an institution level): fen per layer, stored and re-priced."""

    key: str
    zh: str
    en: str
    settlements: int = 0
    old: list[int] = field(default_factory=lambda: [0] * len(LAYERS))
    new: list[int] = field(default_factory=lambda: [0] * len(LAYERS))

    @property
    def fund_old(self) -> int:
        return sum(self.old)

    @property
    def fund_new(self) -> int:
        return sum(self.new)

    @property
    def change(self) -> int:
        return self.fund_new - self.fund_old

    def add(self, old: list[int], new: list[int]) -> None:
        self.settlements += 1
        for i in range(len(LAYERS)):
            self.old[i] += old[i]
            self.new[i] += new[i]

    def merge(self, other: "Group") -> None:
        self.settlements += other.settlements
        for i in range(len(LAYERS)):
            self.old[i] += other.old[i]
            self.new[i] += other.new[i]

    def as_dict(self) -> dict[str, Any]:
        y = format_yuan
        return {"key": self.key, "zh": self.zh, "en": self.en, "settlements": self.settlements, "old": y(self.fund_old),
                "new": y(self.fund_new), "change": y(self.change),
                "layers": {attr: {"old": y(o), "new": y(n), "change": y(n - o)} for (attr, *_), o, n in zip(LAYERS, self.old, self.new)}}


@dataclass(frozen=True)
class PersonChange:
    psn_no: str
    insurance_type: str
    settlements: int
    old: int
    new: int

    @property
    def change(self) -> int:
        return self.new - self.old


@dataclass(frozen=True)
class Failure:
    setl_id: str
    psn_no: str
    in_period: bool
    fund_old: int
    field: str
    code: str
    zh: str
    en: str


@dataclass
class Report:
    policy: Policy
    region: str
    start: date
    end: date
    total: Group = field(default_factory=lambda: Group("total", "合计", "total"))
    by_insurance_type: dict[str, Group] = field(default_factory=dict)
    by_level: dict[str, Group] = field(default_factory=dict)
    persons: list[PersonChange] = field(default_factory=list)  # the most affected, largest change first
    persons_replayed: int = 0
    replayed_before_period: int = 0  # settlements before the period replayed for their accumulators, not reported
    failed: int = 0  # the period's settlements the new policy could not price
    failed_before_period: int = 0
    failures: list[Failure] = field(default_factory=list)  # the first `listed` of them
    failure_codes: dict[str, int] = field(default_factory=dict)
    not_repriced: dict[str, int] = field(default_factory=lambda: dict.fromkeys(NOT_REPRICED, 0))
    heap: list[tuple[int, str, PersonChange]] = field(default_factory=list, repr=False)  # the top persons while replaying

    def merge(self, part: "Report", top: int, listed: int) -> None:
        """Add a worker's share (persons the main process never priced itself), in the order the shares were sent."""
        self.total.merge(part.total)
        for mine, theirs in ((self.by_insurance_type, part.by_insurance_type), (self.by_level, part.by_level)):
            for key, g in theirs.items():
                mine.setdefault(key, Group(g.key, g.zh, g.en)).merge(g)
        for entry in part.heap:
            _keep(self.heap, entry, top)
        self.persons_replayed += part.persons_replayed
        self.replayed_before_period += part.replayed_before_period
        self.failed += part.failed
        self.failed_before_period += part.failed_before_period
        for code, n in part.failure_codes.items():
            self.failure_codes[code] = self.failure_codes.get(code, 0) + n
        self.failures.extend(part.failures[:max(0, listed - len(self.failures))])
        self.not_repriced["insurance_refunded"] += part.not_repriced["insurance_refunded"]

    @property
    def repriced(self) -> int:
        return self.total.settlements

    def insurance_types(self) -> list[Group]:
        return sorted(self.by_insurance_type.values(), key=lambda g: (_rank(INSURANCE_TYPES, g.key), g.key))

    def levels(self) -> list[Group]:
        return sorted(self.by_level.values(), key=lambda g: (_rank(LEVELS, g.key), g.key))

    def layer_rows(self) -> list[dict[str, Any]]:
        """Per layer, in fen: attribute, national field, labels, stored, re-priced, change."""
        return [{"layer": attr, "field": fld, "zh": zh, "en": en, "old": o, "new": n, "change": n - o}
                for (attr, fld, zh, en), o, n in zip(LAYERS, self.total.old, self.total.new)]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON (amounts as yuan strings, the national interface's way)."""
        y = format_yuan
        return {
            "policy": {"version": self.policy.version, "region": self.policy.region, "year": self.policy.year, "digest": self.policy.digest},
            "region": self.region, "from": self.start.isoformat(), "to": self.end.isoformat(),
            "settlements": {"repriced": self.repriced, "failed": self.failed, "persons": self.persons_replayed,
                            "replayed_before_period": self.replayed_before_period, "failed_before_period": self.failed_before_period,
                            "not_repriced": dict(self.not_repriced)},
            "layers": [{**row, "old": y(row["old"]), "new": y(row["new"]), "change": y(row["change"])} for row in self.layer_rows()],
            "fund_total": {"old": y(self.total.fund_old), "new": y(self.total.fund_new), "change": y(self.total.change)},
            "by_insurance_type": [g.as_dict() for g in self.insurance_types()],
            "by_level": [g.as_dict() for g in self.levels()],
            "persons": [{"psn_no": p.psn_no, "insurance_type": p.insurance_type, "settlements": p.settlements, "old": y(p.old),
                         "new": y(p.new), "change": y(p.change)} for p in self.persons],
            "failure_codes": dict(self.failure_codes),
            "failures": [{"setl_id": f.setl_id, "psn_no": f.psn_no, "in_period": f.in_period, "fund_old": y(f.fund_old),
                          "field": f.field, "code": f.code, "zh": f.zh, "en": f.en} for f in self.failures],
        }


def _rank(order: tuple[str, ...], key: str) -> int:
    return order.index(key) if key in order else len(order)


def check_period(policy: Policy, start: date, end: date, region: str | None) -> str:
    """The pooling region the what-if is about (the policy's), once the arguments agree with the policy."""
    if start > end:
        raise InputError("from", "period_reversed", f"开始日期 {start} 晚于结束日期 {end}", f"the period starts ({start}) after it ends ({end})")
    if region is not None and region != policy.region:
        raise InputError("region", "policy_region_mismatch",
                         f"策略文件属于统筹区 {policy.region}，只能测算该统筹区参保人的结算，不能测算 {region}",
                         f"the policy is for region {policy.region}: it re-prices only settlements of persons insured there, not {region}")
    return policy.region


def _stream_query(region: str, year: int, start_utc: Any, end_utc: Any) -> Any:
    insurance_refunded = and_(S.c.status == "partial", exists(
        select(literal(1)).where(T.c.ref == S.c.id, T.c.code == "refund", T.c.client_id != S.c.id + literal(":cash:refund"))))
    # Read by position (_group, _LINE, _OLD): a Row's attribute look-up costs more than the engine's arithmetic.
    columns = [
        S.c.id, S.c.person_id, S.c.region,
        case((S.c.created_at >= start_utc, 1), else_=0).label("in_period"),
        case((insurance_refunded, 1), else_=0).label("insurance_refunded"),
        type_coerce(V.c.visit_date, String).label("visit_date"), V.c.kind, V.c.admission_number, V.c.filing, I.c.level,
        P.c.insurance_type, P.c.tier, P.c.employment_status, P.c.hardship, type_coerce(P.c.birth_date, String).label("birth_date"),
        # The fee line in FeeLine's field order, as settlement reads it (settlement._LINES, bills.fee_line).
        L.c.code, L.c.name, L.c.line_class, L.c.unit_price, L.c.quantity, L.c.price_cap, L.c.self_pay_ratio, L.c.item_category,
        L.c.med_list_codg,
        *(getattr(S.c, attr) for attr in _STORED),
    ]
    if _FROM_DOCUMENT:
        columns.append(S.c.document)
    return (select(*columns)
            .select_from(S.join(V, V.c.id == S.c.visit_id).join(I, I.c.id == S.c.institution_id).join(P, P.c.id == S.c.person_id)
                         .outerjoin(L, and_(L.c.visit_id == S.c.visit_id, L.c.status == "active")))
            .where(S.c.insured_region == region, S.c.year == year, S.c.status.in_(STANDING), S.c.created_at < end_utc)
            .order_by(S.c.person_id, S.c.created_at, S.c.id, L.c.id))


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@dataclass
class _Stored:
    """One stored settlement as streamed: its facts, its fee lines, what each layer paid."""

    id: str
    treatment_region: str
    in_period: bool
    insurance_refunded: bool
    visit_date: date
    kind: str
    admission_number: int
    filing: str | None
    level: str
    old: list[int]
    lines: list[Any]


def _old_amounts(row: Any) -> list[int]:
    old = [int(v) for v in row[_OLD]]
    if _FROM_DOCUMENT:
        doc = json.loads(row[-1])
        for i, fld in _FROM_DOCUMENT:
            old.insert(i, parse_yuan(doc.get(fld) or "0"))
    return old


def replay(conn: Connection, policy: Policy, *, start: date, end: date, region: str | None = None, top: int = 10, listed: int = 50,
           progress: Progress | None = None, workers: int = 1) -> Report:
    """Re-price the period's settlements [start, end] (Beijing days) under ``policy`` and compare (see the module).

    ``workers`` > 1: persons are priced in that many worker processes (persons are independent; this process reads
    and groups the stream, and merges the workers' shares in the order it sent them, so the report is the same)."""
    region = check_period(policy, start, end, region)
    if not 1 <= top <= MAX_TOP:
        raise InputError("top", "out_of_range", f"人数应在1–{MAX_TOP}之间", f"must be between 1 and {MAX_TOP}")
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError("workers", "out_of_range", f"进程数应在1–{MAX_WORKERS}之间", f"must be between 1 and {MAX_WORKERS}")
    year = policy.year
    start_utc, end_utc = day_bounds(start)[0], day_bounds(end)[1]
    report = Report(policy, region, start, end)
    _count_not_repriced(conn, report, start_utc, end_utc)

    total = conn.execute(select(func.count()).select_from(S).where(
        S.c.insured_region == region, S.c.year == year, S.c.status.in_(STANDING), S.c.created_at < end_utc)).scalar_one()
    pricer: _Inline | _Pooled = _Inline(report, top, listed) if workers == 1 else _Pooled(report, top, listed, workers)
    try:
        _stream(conn, region, year, start_utc, end_utc, pricer, progress, total)
        pricer.close()  # the workers' last shares merged
    finally:
        pricer.shutdown()
    report.persons = [p for _, _, p in sorted(report.heap, key=lambda e: (-e[0], e[1]))]
    return report


def _stream(conn: Connection, region: str, year: int, start_utc: Any, end_utc: Any, pricer: "_Inline | _Pooled", progress: Progress | None,
            total: int) -> None:
    rows = conn.execution_options(stream_results=True, yield_per=_PAGE).execute(_stream_query(region, year, start_utc, end_utc))
    pricer.feed(rows, progress, total)


def _group(rows: Iterable[Any], region: str, on_person: Callable[[bills.Patient, list[_Stored]], None], progress: Progress | None = None,
           total: int | None = None) -> int:
    """Turn the ordered rows (one per fee line) into each person's year of settlements, and hand every person with a
    settlement in the period to ``on_person`` — one person's rows at a time in memory. Returns the settlements read."""
    done = 0
    person_id: str | None = None
    patient: bills.Patient | None = None
    year_rows: list[_Stored] = []  # the current person's settlements of the year, in the order they were made
    current: _Stored | None = None
    for row in rows:
        setl_id, psn, treatment_region, in_period, refunded, visit_date, kind, admission, filing, level = row[:10]
        if current is None or setl_id != current.id:
            if psn != person_id:
                if patient is not None and any(s.in_period for s in year_rows):
                    on_person(patient, year_rows)
                insurance_type, tier, employment, hardship, born = row[10:15]
                person_id, year_rows = psn, []
                patient = bills.Patient(psn, region, insurance_type, tier, employment == "retired", hardship, _day(born))
            current = _Stored(setl_id, treatment_region, bool(in_period), bool(refunded), _day(visit_date), kind, int(admission), filing,
                              level, _old_amounts(row), [])
            year_rows.append(current)
            done += 1
            if progress is not None and done % _PAGE == 0:
                progress(done, total)
        line = row[_LINE]
        if line[0] is not None:
            current.lines.append(bills.fee_line_of(*line))
    if patient is not None and any(s.in_period for s in year_rows):
        on_person(patient, year_rows)
    return done


class _Inline:
    """Prices each person's year here, as it is read."""

    def __init__(self, report: Report, top: int, listed: int) -> None:
        self.report, self.top, self.listed = report, top, listed
        self.catalogues: dict[str, Policy | None] = {report.region: report.policy}

    def feed(self, rows: Iterable[Any], progress: Progress | None, total: int) -> None:
        done = _group(rows, self.report.region, self.person, progress, total)
        if progress is not None:
            progress(done, total)

    def person(self, patient: bills.Patient, year_rows: list[_Stored]) -> None:
        _replay_person(self.report, self.report.policy, self.catalogues, patient, year_rows, self.top, self.listed)

    def close(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class _Pooled:
    """Sends the rows, cut at persons' boundaries, in batches to worker processes (spawned: nothing of this process — its
    connection, its threads — is inherited), which group and price them; this process only reads. At most two batches
    per worker are in flight, so memory stays bounded."""

    def __init__(self, report: Report, top: int, listed: int, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.report, self.top, self.listed, self.workers = report, top, listed, workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                        initargs=(report.policy, report.region, report.start, report.end, top, listed))
        self.pending: deque = deque()

    def feed(self, rows: Iterable[Any], progress: Progress | None, total: int) -> None:
        batch: list[tuple] = []
        done = 0
        person_id = setl_id = None
        for row in rows:
            if row[1] != person_id:  # a batch holds whole persons: their years are replayed in one worker
                if len(batch) >= _BATCH:
                    self._send(batch)
                    batch = []
                person_id = row[1]
            if row[0] != setl_id:
                setl_id = row[0]
                done += 1
                if progress is not None and done % _PAGE == 0:
                    progress(done, total)
            batch.append(tuple(row))  # plain tuples: pickled in C, the rows' objects built in the worker
        self._send(batch)
        if progress is not None:
            progress(done, total)

    def _send(self, batch: list[tuple]) -> None:
        if batch:
            self.pending.append(self.pool.submit(_price_rows, batch))
        while len(self.pending) > 2 * self.workers:
            self.report.merge(self.pending.popleft().result(), self.top, self.listed)

    def close(self) -> None:
        while self.pending:
            self.report.merge(self.pending.popleft().result(), self.top, self.listed)

    def shutdown(self) -> None:
        self.pool.shutdown(cancel_futures=True)


_WORKER: dict[str, Any] = {}


def _init_worker(policy: Policy, region: str, start: date, end: date, top: int, listed: int) -> None:
    _WORKER.update(policy=policy, region=region, start=start, end=end, top=top, listed=listed, catalogues={region: policy})


def _price_rows(rows: list[tuple]) -> Report:
    """In a worker: group and price the batch's persons into a report of their own (merged by the main process)."""
    w = _WORKER
    part = Report(w["policy"], w["region"], w["start"], w["end"])
    _group(rows, w["region"], lambda patient, year_rows: _replay_person(part, w["policy"], w["catalogues"], patient, year_rows,
                                                                       w["top"], w["listed"]))
    return part


def _keep(heap: list[tuple[int, str, PersonChange]], entry: tuple[int, str, PersonChange], top: int) -> None:
    if len(heap) < top:
        heapq.heappush(heap, entry)
    elif entry[:2] > heap[0][:2]:
        heapq.heapreplace(heap, entry)


def _count_not_repriced(conn: Connection, report: Report, start_utc: Any, end_utc: Any) -> None:
    """The period's settlements the what-if does not price, by reason (the standing ones of the policy's fund aside)."""
    rows = conn.execute(select(S.c.insured_region, S.c.year, S.c.status, func.count())
                        .where(S.c.created_at >= start_utc, S.c.created_at < end_utc)
                        .group_by(S.c.insured_region, S.c.year, S.c.status)).all()
    for insured_region, year, status, count in rows:
        mine = insured_region == report.region and int(year) == report.policy.year
        if status in STANDING and not mine:  # another fund's, or another year's: standing, but not this policy's to price
            report.not_repriced["other_region" if insured_region != report.region else "other_year"] += int(count)
        elif mine and status in ("cancelled", "pending", "voided"):
            report.not_repriced[status] += int(count)


def _replay_person(report: Report, policy: Policy, catalogues: dict[str, Policy | None], patient: bills.Patient,
                   year_rows: list[_Stored], top: int, listed: int) -> None:
    acc = Accumulators()
    last = max(i for i, s in enumerate(year_rows) if s.in_period)
    old_sum = new_sum = count = 0
    report.persons_replayed += 1
    for s in year_rows[:last + 1]:  # what was made after the person's last settlement of the period cannot change it
        if s.insurance_refunded:  # its fund shares and accumulators were given back: it did not happen, for the funds
            if s.in_period:
                report.not_repriced["insurance_refunded"] += 1
            continue
        if not s.in_period:
            report.replayed_before_period += 1
        catalogue = catalogues.get(s.treatment_region, ...)
        if catalogue is ...:
            catalogue = catalogues[s.treatment_region] = catalogue_for(s.treatment_region, policy.year)
        try:
            if not s.lines:
                raise InputError("lines", "no_lines", "该结算的就诊没有有效的费用明细", "the settlement's visit has no active fee lines")
            bill = bills.build(patient, treatment_region=s.treatment_region, visit_date=s.visit_date, kind=s.kind, level=s.level,
                               admission_number=s.admission_number, filing=s.filing, lines=tuple(s.lines), accumulators=acc)
            priced = settle(bill, policy, catalogue)
        except YibaoError as exc:
            _failed(report, patient, s, exc, listed)
            continue
        acc = acc.plus(priced.accumulator_delta)
        if not s.in_period:
            continue
        new = [int(getattr(priced, attr)) for attr, *_ in LAYERS]
        report.total.add(s.old, new)
        zh, en = INSURANCE_TYPE_LABELS.get(patient.insurance_type, (patient.insurance_type, patient.insurance_type))
        report.by_insurance_type.setdefault(patient.insurance_type, Group(patient.insurance_type, zh, en)).add(s.old, new)
        report.by_level.setdefault(s.level, Group(s.level, LEVEL_ZH.get(s.level, s.level), LEVEL_EN.get(s.level, s.level))).add(s.old, new)
        old_sum += sum(s.old)
        new_sum += sum(new)
        count += 1
    if count and new_sum != old_sum:
        _keep(report.heap, (abs(new_sum - old_sum), patient.id, PersonChange(patient.id, patient.insurance_type, count, old_sum, new_sum)), top)


def _failed(report: Report, patient: bills.Patient, s: _Stored, exc: YibaoError, listed: int) -> None:
    if s.in_period:
        report.failed += 1
        report.failure_codes[exc.code] = report.failure_codes.get(exc.code, 0) + 1
    else:
        report.failed_before_period += 1
    if len(report.failures) < listed:
        report.failures.append(Failure(s.id, patient.id, s.in_period, sum(s.old), exc.field, exc.code, exc.message_zh, exc.message_en))
