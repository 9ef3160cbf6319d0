"""The deliverer's bookkeeping of one receiver (scheme://host:port): its queue, its sends
in flight, its own back-off, and the target prefixes the store leaves out of a fetch
while it rests. No I/O: `analysisd.outbox.Deliverer` keeps one `Receiver` a receiver.
"""

from __future__ import annotations

import urllib.parse
from collections import deque
from dataclasses import dataclass, field

from analysisd.store.records import OutboxRow

# Target prefixes remembered per receiver for the store to leave out (a receiver whose
# rows go to more distinct scheme://netloc spellings has the rest fetched and skipped).
PREFIXES_PER_RECEIVER = 8


def prefix_of(target: str) -> str | None:
    """scheme://netloc exactly as the target starts, or None if it does not start so."""
    try:
        parts = urllib.parse.urlsplit(target)
    except ValueError:
        return None
    prefix = f"{parts.scheme}://{parts.netloc}"
    return prefix if parts.netloc and target.startswith(prefix) else None


@dataclass(slots=True, eq=False)
class Receiver:
    """One receiver's queue: rows waiting, how many are in flight, when to try it again."""

    key: str
    waiting: deque[OutboxRow] = field(default_factory=deque)
    in_flight: int = 0
    retry_at: float = 0.0
    # Sends failed in a row (0 after one succeeds): the receiver's own back-off, so a
    # dead receiver's backlog comes due ever more rarely, not at its rows' first retry.
    failures: int = 0
    # When each send in flight started: a receiver whose oldest send has been open for
    # t seconds frees a slot no sooner than that (a hanging one: up to the timeout).
    sends: dict[tuple[str, str], float] = field(default_factory=dict)
    # Its targets' scheme://netloc as written in them: what the store leaves out of the
    # fetch while this receiver is in back-off or full (see Deliverer.deliver_due).
    prefixes: set[str] = field(default_factory=set)
    # Until when its rows in the store were last made due (postpone_deliveries).
    postponed_until: float = 0.0

    def note_target(self, target: str) -> None:
        """Remember the target's scheme://netloc (up to PREFIXES_PER_RECEIVER of them)."""
        if len(self.prefixes) < PREFIXES_PER_RECEIVER:
            prefix = prefix_of(target)
            if prefix is not None:
                self.prefixes.add(prefix)

    def resting_until(self, now: float, queue_max: int, poll: float) -> float | None:
        """Until when this receiver takes no more rows (its back-off, or a full queue:
        until a poll from now at the latest), or None when it takes them now."""
        if self.retry_at > now:
            return self.retry_at
        if len(self.waiting) >= queue_max:
            return self.room_at(now, poll)
        return None

    def room_at(self, now: float, floor: float) -> float:
        """When rows left in the store for this receiver are worth fetching again."""
        oldest = min(self.sends.values(), default=now)
        return max(self.retry_at, now + max(floor, now - oldest))
