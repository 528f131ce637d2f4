"""`yibao clearing run --month YYYY-MM`: the month's clearing as a batch job.

What the job does and what it leaves to an operator (docs/clearing.md):
- an application whose declared fund and account figures agree with the platform's to the fen is accepted by the job;
- one that differs waits for an operator's review (`POST /api/v1/admin/clearing-applications/{id}/approve`, audited):
  it would be paid at the platform's figures, but a difference is a question someone should look at first;
- every accepted application is paid (or its open instruction followed up) through the agency's bank, and the ones the
  bank has confirmed are posted and cleared (50). Re-running the job changes nothing already done.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import select

from yibao.domain import clearing as rules
from yibao.domain.errors import YibaoError
from yibao.domain.money import format_yuan
from yibao.services import Context
from yibao.services.agency.policies import require_known_region
from yibao.services.clearing import applications, payments
from yibao.store.tables import clearing_applications as A


async def run_month(ctx: Context, month: rules.Month, *, region: str | None = None, bank_id: str | None = None, actor: str = "job:clearing",
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    # Checked here, not only by the CLI: a month still running has no applications to clear yet, and an unknown region
    # would list nothing and look like a month with nothing to do.
    rules.check_month_ended(month, ctx.now())
    if region is not None:
        require_known_region(region)

    def ids(c: Any) -> list[tuple[str, str]]:
        q = select(A.c.id, A.c.status).where(A.c.setlym == month.setlym, A.c.status.in_((rules.APPLIED, rules.ACCEPTED, rules.CLEARED)))
        if region is not None:
            q = q.where(A.c.region == region)
        return [(r.id, r.status) for r in c.execute(q.order_by(A.c.id)).all()]

    todo = await ctx.run(ids, write=False)
    report: dict[str, Any] = {"month": str(month), "region": region, "applications": len(todo), "cleared": 0, "already_cleared": 0,
                              "awaiting_review": [], "awaiting_confirmation": [], "failed": [], "paid": "0.00", "deposits": "0.00"}
    paid = deposits = 0
    for done, (app_id, status) in enumerate(todo, 1):
        if status == rules.CLEARED:
            report["already_cleared"] += 1
        else:
            if status == rules.APPLIED:
                now = ctx.now()
                approval = await ctx.run(lambda c: applications.approve_if_agrees(c, now, app_id=app_id, actor=actor))
                if not approval["approved"]:
                    d = approval["differences"]
                    report["awaiting_review"].append({"clr_appy_evt_id": app_id, "fund_appy_sum": d["fund_appy_sum"], "acct_pay": d["acct_pay"],
                                                      "problem": approval["problem"]})
                    if progress:
                        progress(done, len(todo))
                    continue
            try:
                outcome = await payments.pay(ctx, app_id, bank_id=bank_id, actor=actor)
            except YibaoError as exc:
                report["failed"].append({"clr_appy_evt_id": app_id, "error": exc.describe()})
                outcome = None
            if outcome is not None:
                if outcome.state == "cleared":
                    report["cleared"] += 1
                    paid += outcome.payable
                    deposits += outcome.deposit
                elif outcome.state == "failed":
                    report["failed"].append({"clr_appy_evt_id": app_id, "instruction_no": outcome.instruction_no, "error": outcome.error})
                else:
                    report["awaiting_confirmation"].append({"clr_appy_evt_id": app_id, "instruction_no": outcome.instruction_no,
                                                            "state": outcome.state, "error": outcome.error})
        if progress:
            progress(done, len(todo))
    report["paid"], report["deposits"] = format_yuan(paid), format_yuan(deposits)
    return report
