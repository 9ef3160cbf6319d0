"""Group commit: the writes queued meanwhile are committed together, in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from analysisd.store.errors import RolledBack

W = TypeVar("W")


class GroupCommit(Generic[W]):
    """Group commit: the writes queued while the previous batch was being committed (or
    during one pass of the event loop) are committed together, in one transaction.

    `run(op)` queues a write and waits for its result. `commit(ops)` (the backend's) runs
    a batch in one transaction and returns each op's result in order. If an op fails, the
    backend rolls the batch back and raises RolledBack: then each op of the batch is
    committed on its own, so an error is only heard by the caller whose write caused it.
    Any other error (COMMIT itself failed: whether it took effect is unknown) is every
    op's, and none is retried (a retry could write a measurement twice). A result is handed
    back after COMMIT: a caller hears of its write once it is durable. An op runs even if
    its caller stops waiting (as a statement already sent would); it must not raise for an
    expected outcome (a duplicate, a fenced-off update): it returns it, and writes nothing.
    """

    def __init__(
        self, commit: Callable[[list[W]], Awaitable[list[Any]]], *, in_flight: int = 1
    ) -> None:
        self._commit = commit
        self._in_flight = in_flight  # batches being committed at once, at most
        self._pending: list[tuple[W, asyncio.Future[Any]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        self._starting = 0  # flushers created that have not taken their batch yet
        self.batches = 0  # transactions committed (for tests and benchmarks)
        self.ops = 0  # writes committed in them

    async def run(self, op: W) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((op, future))
        if not self._starting and len(self._flushers) < self._in_flight:
            # Starts on the next pass of the loop: whatever else this pass queues joins it.
            # While every flusher is busy, writes gather for the next batch.
            self._starting += 1
            self._flushers.add(loop.create_task(self._flush()))
        return await future

    async def drain(self) -> None:
        """Wait until every queued write is committed (or failed)."""
        while self._flushers:
            await asyncio.wait([asyncio.shield(task) for task in self._flushers])

    async def _flush(self) -> None:
        self._starting -= 1
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._commit_batch(batch)
        finally:
            # Here, not in a done callback: a write queued after this cannot find a
            # finished flusher still counted and be left waiting.
            task = asyncio.current_task()
            assert task is not None
            self._flushers.discard(task)

    async def _commit_batch(self, batch: list[tuple[W, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._commit([op for op, _ in batch])
        except RolledBack as rolled_back:
            if len(batch) > 1:  # nothing was written: find whose write failed, one by one
                for item in batch:
                    await self._commit_batch([item])
                return
            _settle(batch[0][1], exception=rolled_back.__cause__ or rolled_back)
            return
        except Exception as exc:
            for _, future in batch:
                _settle(future, exception=exc)
            return
        except BaseException as exc:  # cancelled (the loop is going away): nobody waits on
            for _, future in batch:
                _settle(future, exception=exc)
            raise
        self.batches += 1
        self.ops += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exception: BaseException | None = None
) -> None:
    if future.done():  # its caller was cancelled: the write happened (or not) all the same
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
