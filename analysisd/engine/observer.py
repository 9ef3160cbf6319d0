"""The contract between the scheduler and whoever persists runs (the daemon's store).

The scheduler calls ``RunObserver.on_change`` after every state change of a run,
and waits for it before continuing that run, so a change is durable before the
next measurement starts. The CLI's observer just redraws the terminal view.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from analysisd.spec import AnalysisRun, Measurement


class NewMeasurement(NamedTuple):
    metric: str
    measurement: Measurement
    dry_run: bool = False


class RunChange(NamedTuple):
    """What changed in one step: measurements finished and whether the run phase moved.

    NamedTuples (immutable), made for every measurement at a third of a frozen
    dataclass's cost.
    """

    measurements: tuple[NewMeasurement, ...] = ()
    previous_phase: str | None = None
    phase: str | None = None
    completed: bool = False
    notes: tuple[str, ...] = ()


class RunObserver(Protocol):
    async def on_change(self, run: AnalysisRun, change: RunChange) -> None:
        """Persist / publish the run's new status. Exceptions stop that run's progress."""
        ...
