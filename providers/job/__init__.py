"""Argo's ``job`` provider: one Kubernetes batch/v1 Job per measurement (provider.py)."""

from providers.job.provider import JobProvider

__all__ = ["JobProvider"]
