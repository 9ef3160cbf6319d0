"""Metric providers (Prometheus, Datadog, CloudWatch, Web) behind one protocol."""
