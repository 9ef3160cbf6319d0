"""The judge's errors: one root under AnalysisdError.

JudgeError
├── ConfigError        the canary config is unusable (names the field path)
├── SeriesError        the baseline/canary series cannot be judged as given
└── MannWhitneyError   the rank test cannot run (e.g. every observation tied)
"""

from __future__ import annotations

from analysisd import AnalysisdError


class JudgeError(AnalysisdError):
    """Root of the statistical judge's errors."""


class ConfigError(JudgeError):
    """A canary config problem; the message names the field path."""


class SeriesError(JudgeError):
    """Series that cannot be judged (unknown metric, not numbers)."""


class MannWhitneyError(JudgeError):
    """The Mann-Whitney interval cannot be computed (R's and Kayenta's message kept)."""
