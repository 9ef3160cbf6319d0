"""analysisd: canary analysis daemon compatible with Argo Rollouts and Kayenta."""

__version__ = "0.1.0"


class AnalysisdError(Exception):
    """Root of analysisd's own errors."""
