"""Drive what is open: every submitted batch's credits still waiting for the bank (`yibao benefits run`,
`POST /api/v1/admin/benefit-batches/run`). Unclear answers are asked about again; settled credits are never touched."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from yibao.services import Context
from yibao.services.benefits import batches, credits


async def run(ctx: Context, *, batch_id: str | None = None, region: str | None = None, actor: str,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """One pass over the open credits (of one batch, or of every submitted batch of a region or of all): each asked
    about, sent if the bank never had it, and its answer recorded. ``progress(done, total)`` after each credit."""
    def read(conn):  # noqa: ANN001, ANN202
        ids = [batch_id] if batch_id else batches.open_batches(conn, region)
        if batch_id:
            batches.view(conn, batch_id, credits=False)  # not found says so
        return [(b, batches.open_credits(conn, b)) for b in ids]
    work = await ctx.run(read, write=False)
    total = sum(len(c) for _, c in work)
    states: Counter[str] = Counter()
    unclear: list[dict[str, Any]] = []
    done = 0
    for _, open_ids in work:
        for credit_id in open_ids:
            outcome = await credits.drive(ctx, credit_id, actor=actor)
            states[outcome.state] += 1
            if outcome.state == "unknown":
                unclear.append({"credit_id": credit_id, "error": outcome.error})
            done += 1
            if progress is not None:
                progress(done, total)
    summaries = await ctx.run(lambda c: [batches.view(c, b, credits=False) for b, _ in work], write=False)
    return {"batches": len(work), "driven": total, "credited": states["credited"], "returned": states["returned"],
            "awaiting_bank": states["accepted"], "unclear": unclear, "summaries": summaries}


async def submit(ctx: Context, batch_id: str, *, actor: str) -> dict[str, Any]:
    """Submit a batch (its instructions recorded first) and drive its credits once; submitting again only asks the bank
    about what is still open — nothing settled is sent twice."""
    await ctx.run(lambda c: batches.submit(c, ctx.now(), batch_id=batch_id, actor=actor))
    report = await run(ctx, batch_id=batch_id, actor=actor)
    view = await ctx.run(lambda c: batches.view(c, batch_id), write=False)
    return {**view, "run": {k: report[k] for k in ("driven", "credited", "returned", "awaiting_bank", "unclear")}}
