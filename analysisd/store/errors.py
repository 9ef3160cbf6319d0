"""The store's errors (re-exported by analysisd.store and analysisd.store.base)."""

from __future__ import annotations

from analysisd import AnalysisdError


class StoreError(AnalysisdError):
    """The store cannot do what was asked."""


class Conflict(StoreError):
    """An object with that name already exists."""


class LimitExceeded(Conflict):
    """Too many unfinished runs in one namespace."""


class NotFound(StoreError):
    """No object with that name."""


class UnsupportedStore(StoreError):
    """The store URL names a backend this build does not offer."""


class RolledBack(StoreError):
    """A write of a group-commit batch failed and the whole batch was rolled back (the
    failure is the __cause__)."""
