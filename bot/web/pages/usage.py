"""/usage: tokens and cost by day and kind of turn, the prompt-cache share, the daily budget,
and model latency over time, as inline SVG charts (UTC days)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bot.web.charts import line_chart, stacked_bars
from bot.web.views import Page, Routes

__all__ = ["routes"]

routes = Routes()

DAYS = 14


def _percentile(values: list[int], share: float) -> float:
    """As `statistics.quantiles` reads it, so the chart's p50 is the header's median (R138:
    85 and 3 ms were a median of 44 above, 85 in the chart)."""
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return float(cuts[max(0, min(98, round(share * 100) - 1))])


@routes.get("/usage")
async def usage_page(page: Page) -> web.StreamResponse:
    core = page.deps.core
    now = core.clock.now().astimezone(UTC)
    first = (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [(first + timedelta(days=i)).date().isoformat() for i in range(DAYS)]
    rows = await core.stores.console_reads.usage_by_day(first)
    kinds = sorted({r.kind for r in rows})
    tokens: dict[str, list[float]] = {k: [0.0] * DAYS for k in kinds}
    cost: dict[str, list[float]] = {k: [0.0] * DAYS for k in kinds}
    cache_read = [0] * DAYS
    prompt = [0] * DAYS
    index = {d: i for i, d in enumerate(days)}
    for r in rows:
        i = index.get(r.day)
        if i is None:
            continue
        tokens[r.kind][i] += r.total
        cost[r.kind][i] += r.cost_usd
        cache_read[i] += r.cache_read_tokens
        prompt[i] += r.input_tokens + r.cache_read_tokens + r.cache_write_tokens
    share: list[float | None] = [
        100.0 * c / p if p else None for c, p in zip(cache_read, prompt, strict=True)
    ]
    # R226: every call of the 14 days (a LIMIT of 2,000 lost the oldest days above ~143 a day)
    by_day = await core.stores.model_calls.latencies_by_day(first)
    latencies = [ms for day in days for ms in by_day.get(day, ())]
    p50 = [_percentile(by_day[d], 0.5) if by_day.get(d) else None for d in days]
    p95 = [_percentile(by_day[d], 0.95) if by_day.get(d) else None for d in days]
    spent = await core.runner.budget_spent()
    totals = {
        "tokens": sum(sum(v) for v in tokens.values()),
        "cost": sum(sum(v) for v in cost.values()),
        "cache_share": 100.0 * sum(cache_read) / sum(prompt) if sum(prompt) else 0.0,
        "calls": len(latencies),
        "median_ms": statistics.median(latencies) if latencies else 0,
    }
    per_kind = [(k, sum(tokens[k]), sum(cost[k])) for k in kinds]
    return page.render(
        "usage.html",
        charts=[
            stacked_bars("Tokens by day and kind of turn", days, tokens, lambda v: f"{v:,.0f}"),
            stacked_bars("Estimated cost by day (USD)", days, cost, lambda v: f"${v:.4f}"),
            line_chart(
                "Prompt-cache share of input (%)",
                days,
                {"cache read": share},
                lambda v: f"{v:.0f}%",
            ),
            line_chart(
                "Model latency (ms)", days, {"p50": p50, "p95": p95}, lambda v: f"{v:,.0f} ms"
            ),
        ],
        totals=totals,
        per_kind=per_kind,
        budget=core.settings.daily_token_budget,
        spent=spent,
        model=core.runner.model_name,
        since=first,
        generated=datetime.now(UTC),
    )
