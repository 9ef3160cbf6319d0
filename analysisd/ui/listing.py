"""Which runs a list page shows: one page, newest first, read from the store as one page.

Without a label filter only the page's PAGE_SIZE runs are read (the store's
`list_runs_newest`): a namespace of thousands opens as fast as one of fifty.
Labels are not indexed, so a label filter reads the namespace's runs and filters here.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysisd.api.context import ApiContext
from analysisd.api.selectors import Requirement, matches
from analysisd.store import RunRecord

PAGE_SIZE = 50  # rows per page; older runs are a "older" link away


@dataclass(frozen=True, slots=True)
class RunPage:
    rows: list[RunRecord]  # newest first
    total: int  # runs matching the filters, on every page
    number: int  # 1-based, within 1..pages

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def page_number(text: str | None) -> int:
    try:
        return max(1, int(text or "1"))
    except ValueError:
        return 1


async def run_page(
    ctx: ApiContext,
    namespace: str,
    phase: str,
    selector: list[Requirement],
    number: int,
) -> RunPage:
    if selector:
        every = await ctx.store.list_runs(namespace, phase or None)
        chosen = sorted(
            (r for r in every if matches(selector, r.labels)),
            key=lambda r: (r.created_at, r.name),
            reverse=True,
        )
        number = min(number, max(1, -(-len(chosen) // PAGE_SIZE)))
        start = (number - 1) * PAGE_SIZE
        return RunPage(chosen[start : start + PAGE_SIZE], len(chosen), number)
    total, rows = await ctx.store.list_runs_newest(
        namespace, phase or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    last = max(1, -(-total // PAGE_SIZE))
    if number > last:  # past the end (runs were deleted): the last page
        number = last
        total, rows = await ctx.store.list_runs_newest(
            namespace, phase or None, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
    return RunPage(rows, total, number)
